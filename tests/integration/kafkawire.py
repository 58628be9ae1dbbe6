"""A tiny Kafka wire client for tests: just enough to ask a broker (or
kstretch) for Metadata v12, FindCoordinator v0-4 and ApiVersions v0-2, and
to read the answers field by field; and, for a scripted broker, to read
request headers and write the answers to those requests. For regional mode's
split APIs, one flexible version each, both ways: Produce v9, Fetch v12,
ListOffsets v7, OffsetForLeaderEpoch v4, DeleteRecords v2 (and a v2 record
batch to produce).

Written from the message definitions in Apache Kafka's
clients/src/main/resources/common/message/*.json. Decoding is bounds-checked:
a short buffer raises Truncated, an impossible value raises Malformed, and no
count is trusted before the bytes behind it are known to exist.
"""
import socket
import struct
from dataclasses import dataclass, field
from typing import List, Optional

API_PRODUCE = 0
API_FETCH = 1
API_LIST_OFFSETS = 2
API_METADATA = 3
API_FIND_COORDINATOR = 10
API_API_VERSIONS = 18
API_SASL_HANDSHAKE = 17
API_DELETE_RECORDS = 21
API_OFFSET_FOR_LEADER_EPOCH = 23
API_OFFSET_FETCH = 9
API_DESCRIBE_GROUPS = 15
API_LIST_GROUPS = 16
API_DELETE_GROUPS = 42
API_SASL_AUTHENTICATE = 36

# First flexible version of each API this module speaks (header v2 / v1 from there on).
FIRST_FLEXIBLE = {API_PRODUCE: 9, API_FETCH: 12, API_LIST_OFFSETS: 6, API_METADATA: 9, API_FIND_COORDINATOR: 3,
                  API_API_VERSIONS: 3, API_DELETE_RECORDS: 2, API_OFFSET_FOR_LEADER_EPOCH: 4,
                  API_OFFSET_FETCH: 6, API_DESCRIBE_GROUPS: 5, API_LIST_GROUPS: 3, API_DELETE_GROUPS: 2,
                  11: 6, 68: 0,  # JoinGroup, ConsumerGroupHeartbeat
                  32: 4, 61: 0,  # DescribeConfigs, DescribeProducers (test_regional_admin.py)
                  API_SASL_AUTHENTICATE: 2}

MAX_FRAME_BYTES = 64 << 20
ZERO_UUID = bytes(16)


class WireError(ValueError):
    pass


class Truncated(WireError):
    """The buffer ends before the field does."""


class Malformed(WireError):
    """The bytes are there but cannot be a valid field."""


# ---------------------------------------------------------------- reading

class Reader:
    def __init__(self, data, offset=0):
        self.data = bytes(data)
        self.pos = offset

    @property
    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n, what="bytes"):
        if n < 0:
            raise Malformed(f"{what}: negative length {n} at offset {self.pos}")
        if n > self.remaining:
            raise Truncated(f"{what}: need {n} bytes at offset {self.pos}, {self.remaining} left")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def _unpack(self, fmt, n, what):
        return struct.unpack(fmt, self.take(n, what))[0]

    def int8(self, what="int8"):
        return self._unpack(">b", 1, what)

    def int16(self, what="int16"):
        return self._unpack(">h", 2, what)

    def int32(self, what="int32"):
        return self._unpack(">i", 4, what)

    def int64(self, what="int64"):
        return self._unpack(">q", 8, what)

    def boolean(self, what="bool"):
        v = self._unpack(">B", 1, what)
        if v > 1:
            raise Malformed(f"{what}: bool byte {v} at offset {self.pos - 1}")
        return v == 1

    def uuid(self, what="uuid"):
        return self.take(16, what)

    def uvarint(self, what="uvarint"):
        value = 0
        for i in range(5):  # at most 5 bytes for 32 bits
            b = self._unpack(">B", 1, what)
            if i == 4 and b > 0x0F:
                raise Malformed(f"{what}: unsigned varint overflows 32 bits at offset {self.pos - 1}")
            value |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                return value
        raise Malformed(f"{what}: unsigned varint longer than 5 bytes at offset {self.pos - 1}")

    def _text(self, raw, what):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Malformed(f"{what}: not UTF-8 ({e})") from None

    def string(self, nullable=False, what="string"):
        n = self.int16(what)
        if n == -1 and nullable:
            return None
        if n < 0:
            raise Malformed(f"{what}: length {n} at offset {self.pos - 2}")
        return self._text(self.take(n, what), what)

    def compact_bytes(self, nullable=False, what="compact bytes"):
        n = self.uvarint(what)
        if n == 0:
            if nullable:
                return None
            raise Malformed(f"{what}: null in a non-nullable field at offset {self.pos - 1}")
        return self.take(n - 1, what)

    def compact_string(self, nullable=False, what="compact string"):
        n = self.uvarint(what)
        if n == 0:
            if nullable:
                return None
            raise Malformed(f"{what}: null in a non-nullable field at offset {self.pos - 1}")
        return self._text(self.take(n - 1, what), what)

    def _count(self, n, min_item_bytes, what):
        # Never trust a count: the items must fit in what is left.
        if n * min_item_bytes > self.remaining:
            raise Truncated(f"{what}: {n} items of >= {min_item_bytes} bytes, {self.remaining} bytes left")
        return n

    def array(self, read_item, min_item_bytes=1, nullable=False, what="array"):
        n = self.int32(what)
        if n == -1 and nullable:
            return None
        if n < 0:
            raise Malformed(f"{what}: count {n} at offset {self.pos - 4}")
        return [read_item() for _ in range(self._count(n, min_item_bytes, what))]

    def compact_array(self, read_item, min_item_bytes=1, nullable=False, what="compact array"):
        n = self.uvarint(what)
        if n == 0:
            if nullable:
                return None
            raise Malformed(f"{what}: null in a non-nullable array at offset {self.pos - 1}")
        return [read_item() for _ in range(self._count(n - 1, min_item_bytes, what))]

    def compact_int32_array(self, what="int32 array"):
        return self.compact_array(lambda: self.int32(what), 4, what=what)

    def tagged_fields(self, what="tagged fields"):
        """{tag: raw bytes}; unknown tags are kept, not interpreted."""
        n = self._count(self.uvarint(what), 2, what)
        tags = {}
        last = -1
        for _ in range(n):
            tag = self.uvarint(what)
            if tag <= last:
                raise Malformed(f"{what}: tag {tag} after tag {last}")
            last = tag
            tags[tag] = self.take(self.uvarint(what), what)
        return tags

    def end(self, strict, what="message"):
        """Bytes left after the last field: an error when strict, else their count."""
        if strict and self.remaining:
            raise Malformed(f"{what}: {self.remaining} trailing bytes at offset {self.pos}")
        return self.remaining


# ---------------------------------------------------------------- writing

class Writer:
    def __init__(self):
        self.buf = bytearray()

    def bytes(self):
        return bytes(self.buf)

    def raw(self, b):
        self.buf += b
        return self

    def int8(self, v):
        return self.raw(struct.pack(">b", v))

    def int16(self, v):
        return self.raw(struct.pack(">h", v))

    def int32(self, v):
        return self.raw(struct.pack(">i", v))

    def int64(self, v):
        return self.raw(struct.pack(">q", v))

    def boolean(self, v):
        return self.raw(b"\x01" if v else b"\x00")

    def uuid(self, v):
        assert len(v) == 16
        return self.raw(v)

    def uvarint(self, v):
        assert 0 <= v < 1 << 32
        while v >= 0x80:
            self.buf.append((v & 0x7F) | 0x80)
            v >>= 7
        self.buf.append(v)
        return self

    def string(self, s):
        if s is None:
            return self.int16(-1)
        b = s.encode()
        return self.int16(len(b)).raw(b)

    def compact_string(self, s):
        if s is None:
            return self.uvarint(0)
        b = s.encode()
        return self.uvarint(len(b) + 1).raw(b)

    def compact_bytes(self, b):
        if b is None:
            return self.uvarint(0)
        return self.uvarint(len(b) + 1).raw(b)

    def compact_array_len(self, items):
        return self.uvarint(0 if items is None else len(items) + 1)

    def empty_tags(self):
        return self.uvarint(0)


def is_flexible(api_key, api_version):
    first = FIRST_FLEXIBLE.get(api_key)
    return first is not None and api_version >= first


def encode_request(api_key, api_version, correlation_id, body, client_id="kstretch-tests"):
    """A whole request frame: size, header (v1, or v2 for flexible versions), body."""
    w = Writer().int16(api_key).int16(api_version).int32(correlation_id).string(client_id)
    if is_flexible(api_key, api_version):
        w.empty_tags()
    payload = w.bytes() + body
    return struct.pack(">i", len(payload)) + payload


def decode_response_header(r, api_key, api_version):
    """Reads the response header; returns the correlation id. ApiVersions
    always answers with header v0, even in flexible versions."""
    corr = r.int32("correlation_id")
    if is_flexible(api_key, api_version) and api_key != API_API_VERSIONS:
        r.tagged_fields("response header tags")
    return corr


# ---------------------------------------------------------------- Metadata v12

@dataclass
class MetadataBroker:
    node_id: int
    host: str
    port: int
    rack: Optional[str]


@dataclass
class MetadataPartition:
    error_code: int
    partition_index: int
    leader_id: int
    leader_epoch: int
    replica_nodes: List[int]
    isr_nodes: List[int]
    offline_replicas: List[int]


@dataclass
class MetadataTopic:
    error_code: int
    name: Optional[str]
    topic_id: bytes
    is_internal: bool
    partitions: List[MetadataPartition]
    topic_authorized_operations: int


@dataclass
class MetadataResponse:
    throttle_time_ms: int
    brokers: List[MetadataBroker]
    cluster_id: Optional[str]
    controller_id: int
    topics: List[MetadataTopic] = field(default_factory=list)
    # Bytes after the last field. librdkafka 2.12's mock writes the response's
    # top-level tagged fields twice in Metadata v9+, so it sends one extra 0x00.
    trailing_bytes: int = 0
    # v13+ (KIP-1102): the top-level ErrorCode (e.g. REBOOTSTRAP_REQUIRED); 0 before v13.
    error_code: int = 0

    def broker(self, node_id):
        for b in self.brokers:
            if b.node_id == node_id:
                return b
        raise KeyError(node_id)

    def topic(self, name):
        for t in self.topics:
            if t.name == name:
                return t
        raise KeyError(name)


def metadata_request_v12(topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False):
    """Body of MetadataRequest v12. topics=None asks for all topics (null array)."""
    w = Writer()
    w.compact_array_len(topics)
    for name in topics or ():
        w.uuid(ZERO_UUID).compact_string(name).empty_tags()  # TopicId (v10+), Name (nullable v10+)
    w.boolean(allow_auto_topic_creation)
    # IncludeClusterAuthorizedOperations exists only in v8-10.
    w.boolean(include_topic_authorized_operations)
    w.empty_tags()
    return w.bytes()


def _metadata_partition(r):
    p = MetadataPartition(
        error_code=r.int16("partition error_code"),
        partition_index=r.int32("partition_index"),
        leader_id=r.int32("leader_id"),
        leader_epoch=r.int32("leader_epoch"),
        replica_nodes=r.compact_int32_array("replica_nodes"),
        isr_nodes=r.compact_int32_array("isr_nodes"),
        offline_replicas=r.compact_int32_array("offline_replicas"),
    )
    r.tagged_fields("partition tags")
    return p


def _metadata_topic(r):
    error_code = r.int16("topic error_code")
    name = r.compact_string(nullable=True, what="topic name")  # nullable from v12
    topic_id = r.uuid("topic_id")
    is_internal = r.boolean("is_internal")
    partitions = r.compact_array(lambda: _metadata_partition(r), 2 + 4 * 3 + 3 + 1, what="partitions")
    ops = r.int32("topic_authorized_operations")
    r.tagged_fields("topic tags")
    return MetadataTopic(error_code, name, topic_id, is_internal, partitions, ops)


def _metadata_broker(r):
    b = MetadataBroker(
        node_id=r.int32("node_id"),
        host=r.compact_string(what="host"),
        port=r.int32("port"),
        rack=r.compact_string(nullable=True, what="rack"),
    )
    r.tagged_fields("broker tags")
    return b


def decode_metadata_response_v12(body, strict=False, version=12):
    """MetadataResponse v12 or v13 body (after the response header). Trailing
    bytes are counted, as Kafka clients ignore them, or rejected when strict.
    The request is the same in both versions (metadata_request_v12); v13's
    answer adds the top-level ErrorCode after the topics."""
    assert version in (12, 13)
    r = body if isinstance(body, Reader) else Reader(body)
    throttle = r.int32("throttle_time_ms")
    brokers = r.compact_array(lambda: _metadata_broker(r), 4 + 1 + 4 + 1 + 1, what="brokers")
    cluster_id = r.compact_string(nullable=True, what="cluster_id")
    controller_id = r.int32("controller_id")
    topics = r.compact_array(lambda: _metadata_topic(r), 2 + 1 + 16 + 1 + 1 + 4 + 1, what="topics")
    # ClusterAuthorizedOperations exists only in v8-10.
    error_code = r.int16("error_code") if version >= 13 else 0
    r.tagged_fields("response tags")
    trailing = r.end(strict, f"MetadataResponse v{version}")
    return MetadataResponse(throttle, brokers, cluster_id, controller_id, topics, trailing, error_code)


# ---------------------------------------------------------------- FindCoordinator v0-4

@dataclass
class FindCoordinatorResponse:
    throttle_time_ms: int
    error_code: int
    error_message: Optional[str]
    node_id: int
    host: str
    port: int


def find_coordinator_request(version, key, key_type=0):
    """Body of FindCoordinatorRequest v0-3 (one key; v4 batches them: find_coordinator_request_v4)."""
    assert 0 <= version <= 3
    w = Writer()
    if version >= 3:
        w.compact_string(key).int8(key_type).empty_tags()
    else:
        w.string(key)
        if version >= 1:
            w.int8(key_type)
    return w.bytes()


def decode_find_coordinator_response(version, body, strict=True):
    r = body if isinstance(body, Reader) else Reader(body)
    flexible = version >= 3
    throttle = r.int32("throttle_time_ms") if version >= 1 else 0
    error_code = r.int16("error_code")
    message = None
    if version >= 1:
        message = (r.compact_string(nullable=True, what="error_message") if flexible
                   else r.string(nullable=True, what="error_message"))
    node_id = r.int32("node_id")
    # The mock answers an error with a null host, as some brokers do.
    host = r.compact_string(nullable=True, what="host") if flexible else r.string(nullable=True, what="host")
    port = r.int32("port")
    if flexible:
        r.tagged_fields("response tags")
    r.end(strict, f"FindCoordinatorResponse v{version}")
    return FindCoordinatorResponse(throttle, error_code, message, node_id, host, port)


@dataclass
class Coordinator:
    key: str
    node_id: int
    host: str
    port: int
    error_code: int
    error_message: Optional[str]


@dataclass
class FindCoordinatorResponseV4:
    throttle_time_ms: int
    coordinators: List[Coordinator]

    def coordinator(self, key):
        for c in self.coordinators:
            if c.key == key:
                return c
        raise KeyError(key)


def find_coordinator_request_v4(keys, key_type=0):
    """Body of FindCoordinatorRequest v4 (KIP-699): KeyType, then CoordinatorKeys, a batch."""
    w = Writer().int8(key_type).compact_array_len(keys)
    for k in keys:
        w.compact_string(k)
    return w.empty_tags().bytes()


def decode_find_coordinator_request_v4(body):
    """(key_type, [keys]) from a FindCoordinatorRequest v4 body."""
    r = body if isinstance(body, Reader) else Reader(body)
    key_type = r.int8("key_type")
    keys = r.compact_array(lambda: r.compact_string(what="coordinator key"), 1, what="coordinator_keys")
    r.tagged_fields("request tags")
    r.end(True, "FindCoordinatorRequest v4")
    return key_type, keys


def find_coordinator_response_v4(coordinators, throttle_time_ms=0):
    """Body of FindCoordinatorResponse v4; coordinators are Coordinator values."""
    w = Writer().int32(throttle_time_ms).compact_array_len(coordinators)
    for c in coordinators:
        w.compact_string(c.key).int32(c.node_id).compact_string(c.host).int32(c.port).int16(c.error_code)
        w.compact_string(c.error_message).empty_tags()
    return w.empty_tags().bytes()


def _coordinator(r):
    c = Coordinator(
        key=r.compact_string(what="key"),
        node_id=r.int32("node_id"),
        host=r.compact_string(what="host"),
        port=r.int32("port"),
        error_code=r.int16("error_code"),
        error_message=r.compact_string(nullable=True, what="error_message"),
    )
    r.tagged_fields("coordinator tags")
    return c


def decode_find_coordinator_response_v4(body, strict=True):
    r = body if isinstance(body, Reader) else Reader(body)
    throttle = r.int32("throttle_time_ms")
    coordinators = r.compact_array(lambda: _coordinator(r), 1 + 4 + 1 + 4 + 2 + 1 + 1, what="coordinators")
    r.tagged_fields("response tags")
    r.end(strict, "FindCoordinatorResponse v4")
    return FindCoordinatorResponseV4(throttle, coordinators)


# ---------------------------------------------------------------- groups named by id: DescribeGroups v5,
# ListGroups v4, DeleteGroups v2, OffsetFetch v8 (every one flexible)

def _strings(w, items):
    w.compact_array_len(items)
    for s in items:
        w.compact_string(s)
    return w


def _read_strings(r, what):
    return r.compact_array(lambda: r.compact_string(what=what), 1, what=what + "s")


def describe_groups_request_v5(groups, include_authorized_operations=False):
    return _strings(Writer(), groups).boolean(include_authorized_operations).empty_tags().bytes()


def decode_describe_groups_request_v5(body):
    r = body if isinstance(body, Reader) else Reader(body)
    groups = _read_strings(r, "group")
    r.boolean("include_authorized_operations")
    r.tagged_fields("request tags")
    r.end(True, "DescribeGroupsRequest v5")
    return groups


def describe_groups_response_v5(groups, throttle_time_ms=0):
    """groups: [(error_code, group_id, state)], no members."""
    w = Writer().int32(throttle_time_ms).compact_array_len(groups)
    for err, group, state in groups:
        w.int16(err).compact_string(group).compact_string(state).compact_string("consumer").compact_string("")
        w.compact_array_len([]).int32(-2147483648).empty_tags()
    return w.empty_tags().bytes()


def decode_describe_groups_response_v5(body, strict=True):
    """[(error_code, group_id, state)] in answer order."""
    r = body if isinstance(body, Reader) else Reader(body)
    r.int32("throttle_time_ms")

    def group():
        err, gid, state = r.int16("error_code"), r.compact_string(what="group_id"), r.compact_string(what="state")
        r.compact_string(what="protocol_type")
        r.compact_string(what="protocol_data")

        def member():
            m = r.compact_string(what="member_id")
            r.compact_string(nullable=True, what="group_instance_id")
            r.compact_string(what="client_id")
            r.compact_string(what="client_host")
            r.compact_bytes(what="member_metadata")
            r.compact_bytes(what="member_assignment")
            r.tagged_fields("member tags")
            return m
        r.compact_array(member, 6, what="members")
        r.int32("authorized_operations")
        r.tagged_fields("group tags")
        return err, gid, state
    groups = r.compact_array(group, 2 + 4 + 1 + 4 + 1, what="groups")
    r.tagged_fields("response tags")
    r.end(strict, "DescribeGroupsResponse v5")
    return groups


def list_groups_request_v4(states=()):
    return _strings(Writer(), list(states)).empty_tags().bytes()


def list_groups_response_v4(groups, error_code=0, throttle_time_ms=0):
    """groups: [(group_id, state)]."""
    w = Writer().int32(throttle_time_ms).int16(error_code).compact_array_len(groups)
    for group, state in groups:
        w.compact_string(group).compact_string("consumer").compact_string(state).empty_tags()
    return w.empty_tags().bytes()


def decode_list_groups_response_v4(body, strict=True):
    """(error_code, [(group_id, state)])."""
    r = body if isinstance(body, Reader) else Reader(body)
    r.int32("throttle_time_ms")
    err = r.int16("error_code")

    def group():
        gid = r.compact_string(what="group_id")
        r.compact_string(what="protocol_type")
        state = r.compact_string(what="state")
        r.tagged_fields("group tags")
        return gid, state
    groups = r.compact_array(group, 4, what="groups")
    r.tagged_fields("response tags")
    r.end(strict, "ListGroupsResponse v4")
    return err, groups


def delete_groups_request_v2(groups):
    return _strings(Writer(), groups).empty_tags().bytes()


def decode_delete_groups_request_v2(body):
    r = body if isinstance(body, Reader) else Reader(body)
    groups = _read_strings(r, "group")
    r.tagged_fields("request tags")
    r.end(True, "DeleteGroupsRequest v2")
    return groups


def delete_groups_response_v2(results, throttle_time_ms=0):
    """results: [(group_id, error_code)]."""
    w = Writer().int32(throttle_time_ms).compact_array_len(results)
    for group, err in results:
        w.compact_string(group).int16(err).empty_tags()
    return w.empty_tags().bytes()


def decode_delete_groups_response_v2(body, strict=True):
    r = body if isinstance(body, Reader) else Reader(body)
    r.int32("throttle_time_ms")

    def result():
        gid, err = r.compact_string(what="group_id"), r.int16("error_code")
        r.tagged_fields("result tags")
        return gid, err
    results = r.compact_array(result, 4, what="results")
    r.tagged_fields("response tags")
    r.end(strict, "DeleteGroupsResponse v2")
    return results


def offset_fetch_request_v8(groups, require_stable=False):
    """groups: [(group_id, None for every topic, or [(topic, [partitions])])]."""
    w = Writer().compact_array_len(groups)
    for group, topics in groups:
        w.compact_string(group).compact_array_len(topics)
        for topic, parts in topics or ():
            w.compact_string(topic).compact_array_len(parts)
            for p in parts:
                w.int32(p)
            w.empty_tags()
        w.empty_tags()
    return w.boolean(require_stable).empty_tags().bytes()


def decode_offset_fetch_request_v8(body):
    """[group_id] of an OffsetFetchRequest v8 body (their topics read and dropped)."""
    r = body if isinstance(body, Reader) else Reader(body)

    def group():
        gid = r.compact_string(what="group_id")

        def topic():
            r.compact_string(what="topic")
            r.compact_int32_array("partitions")
            r.tagged_fields("topic tags")
        r.compact_array(topic, 3, nullable=True, what="topics")
        r.tagged_fields("group tags")
        return gid
    groups = r.compact_array(group, 3, what="groups")
    r.boolean("require_stable")
    r.tagged_fields("request tags")
    r.end(True, "OffsetFetchRequest v8")
    return groups


def offset_fetch_response_v8(groups, throttle_time_ms=0):
    """groups: [(group_id, error_code, [(topic, partition, offset)])]."""
    w = Writer().int32(throttle_time_ms).compact_array_len(groups)
    for group, err, offsets in groups:
        by_topic = {}
        for topic, p, o in offsets:
            by_topic.setdefault(topic, []).append((p, o))
        w.compact_string(group).compact_array_len(list(by_topic))
        for topic, parts in by_topic.items():
            w.compact_string(topic).compact_array_len(parts)
            for p, o in parts:
                w.int32(p).int64(o).int32(-1).compact_string("").int16(0).empty_tags()
            w.empty_tags()
        w.int16(err).empty_tags()
    return w.empty_tags().bytes()


def decode_offset_fetch_response_v8(body, strict=True):
    """[(group_id, error_code, [(topic, partition, offset)])] in answer order."""
    r = body if isinstance(body, Reader) else Reader(body)
    r.int32("throttle_time_ms")

    def group():
        gid = r.compact_string(what="group_id")
        offsets = []

        def topic():
            name = r.compact_string(what="topic")

            def part():
                p, o = r.int32("partition"), r.int64("offset")
                r.int32("leader_epoch")
                r.compact_string(nullable=True, what="metadata")
                r.int16("error_code")
                r.tagged_fields("partition tags")
                offsets.append((name, p, o))
            r.compact_array(part, 4 + 8 + 4 + 1 + 2 + 1, what="partitions")
            r.tagged_fields("topic tags")
        r.compact_array(topic, 3, what="topics")
        err = r.int16("error_code")
        r.tagged_fields("group tags")
        return gid, err, offsets
    groups = r.compact_array(group, 1 + 1 + 2 + 1, what="groups")
    r.tagged_fields("response tags")
    r.end(strict, "OffsetFetchResponse v8")
    return groups


# ---------------------------------------------------------------- Fetch v4 and v16 (requests only)

def fetch_request(version, partitions, max_wait_ms=500, min_bytes=1, max_bytes=50 << 20,
                  partition_max_bytes=1 << 20, rack_id=""):
    """Body of FetchRequest v4 (topics by name), v12 (flexible, topics by name)
    or v16 (flexible, topics by id). partitions: [(topic name for v4 and v12
    or topic id for v16, partition, fetch offset)]."""
    assert version in (4, 12, 16)
    by_topic = {}
    for topic, partition, offset in partitions:
        by_topic.setdefault(topic, []).append((partition, offset))
    w = Writer()
    if version < 15:
        w.int32(-1)  # ReplicaId: a consumer
    w.int32(max_wait_ms).int32(min_bytes).int32(max_bytes).int8(0)  # IsolationLevel: read uncommitted
    if version == 4:
        w.int32(len(by_topic))
        for name, parts in by_topic.items():
            w.string(name).int32(len(parts))
            for partition, offset in parts:
                w.int32(partition).raw(struct.pack(">q", offset)).int32(partition_max_bytes)
        return w.bytes()
    w.int32(0).int32(-1)  # SessionId 0, SessionEpoch -1: a full fetch, no session
    w.compact_array_len(list(by_topic))
    for topic, parts in by_topic.items():
        if version >= 13:
            w.uuid(topic)
        else:
            w.compact_string(topic)
        w.compact_array_len(parts)
        for partition, offset in parts:
            # CurrentLeaderEpoch, FetchOffset, LastFetchedEpoch, LogStartOffset, PartitionMaxBytes
            w.int32(partition).int32(-1).raw(struct.pack(">q", offset)).int32(-1)
            w.raw(struct.pack(">q", -1)).int32(partition_max_bytes).empty_tags()
        w.empty_tags()
    w.compact_array_len([])  # ForgottenTopicsData
    w.compact_string(rack_id)  # RackId
    return w.empty_tags().bytes()


# ---------------------------------------------------------------- ApiVersions v0-2

@dataclass
class ApiVersionsResponse:
    error_code: int
    api_keys: dict  # api_key -> (min_version, max_version)
    throttle_time_ms: int


def decode_api_versions_response(version, body, strict=True):
    r = body if isinstance(body, Reader) else Reader(body)
    error_code = r.int16("error_code")
    keys = r.array(lambda: (r.int16("api_key"), r.int16("min_version"), r.int16("max_version")), 6,
                   what="api_keys")
    throttle = r.int32("throttle_time_ms") if version >= 1 else 0
    r.end(strict, f"ApiVersionsResponse v{version}")
    return ApiVersionsResponse(error_code, {k: (lo, hi) for k, lo, hi in keys}, throttle)


def api_versions_response_v0(api_keys):
    """Body of ApiVersionsResponse v0; api_keys maps api_key -> (min_version, max_version)."""
    w = Writer().int16(0).int32(len(api_keys))
    for key, (lo, hi) in sorted(api_keys.items()):
        w.int16(key).int16(lo).int16(hi)
    return w.bytes()


def metadata_response_v12(brokers, cluster_id="kstretch-tests", controller_id=1, topics=()):
    """Body of MetadataResponse v12 for a scripted broker: brokers are
    MetadataBroker values; topics (MetadataTopic values) may be empty."""
    w = Writer().int32(0).compact_array_len(brokers)
    for b in brokers:
        w.int32(b.node_id).compact_string(b.host).int32(b.port).compact_string(b.rack).empty_tags()
    w.compact_string(cluster_id).int32(controller_id).compact_array_len(list(topics))
    for t in topics:
        w.int16(t.error_code).compact_string(t.name).uuid(t.topic_id).boolean(t.is_internal)
        w.compact_array_len(t.partitions)
        for p in t.partitions:
            w.int16(p.error_code).int32(p.partition_index).int32(p.leader_id).int32(p.leader_epoch)
            for nodes in (p.replica_nodes, p.isr_nodes, p.offline_replicas):
                w.compact_array_len(nodes)
                for n in nodes:
                    w.int32(n)
            w.empty_tags()
        w.int32(t.topic_authorized_operations).empty_tags()
    return w.empty_tags().bytes()


# ---------------------------------------------------------------- the split APIs of regional mode, one version each
#
# Requests and answers as flat lists of per-partition tuples, topic first, in
# the order given (grouped by topic in order of first appearance).

def _by_topic(items):
    out = {}
    for topic, *rest in items:
        out.setdefault(topic, []).append(tuple(rest))
    return out


def _write_topics(w, items, write_partition):
    groups = _by_topic(items)
    w.compact_array_len(list(groups))
    for topic, parts in groups.items():
        w.compact_string(topic).compact_array_len(parts)
        for p in parts:
            write_partition(w, *p)
            w.empty_tags()
        w.empty_tags()


def _read_topics(r, read_partition, what):
    """[(topic, *partition fields)] of a compact array of topics by name."""
    out = []

    def partition():
        p = read_partition(r)
        r.tagged_fields(f"{what} partition tags")
        return p

    def topic():
        name = r.compact_string(what=f"{what} topic")
        out.extend((name, *p) for p in r.compact_array(partition, 4, what=f"{what} partitions"))
        r.tagged_fields(f"{what} topic tags")

    r.compact_array(topic, 2, what=f"{what} topics")
    return out


def produce_request_v9(parts, acks=-1, timeout_ms=10000, transactional_id=None):
    """Body of ProduceRequest v9; parts: [(topic, partition, records bytes)]."""
    w = Writer().compact_string(transactional_id).int16(acks).int32(timeout_ms)
    _write_topics(w, parts, lambda w, p, rec: w.int32(p).compact_bytes(rec))
    return w.empty_tags().bytes()


def decode_produce_request_v9(body):
    """(acks, [(topic, partition, records bytes)])."""
    r = body if isinstance(body, Reader) else Reader(body)
    r.compact_string(nullable=True, what="transactional_id")
    acks = r.int16("acks")
    r.int32("timeout_ms")
    parts = _read_topics(r, lambda r: (r.int32("index"), r.compact_bytes(nullable=True, what="records")), "produce")
    r.tagged_fields("request tags")
    return acks, parts


def produce_response_v9(parts, throttle_time_ms=0):
    """Body of ProduceResponse v9; parts: [(topic, partition, error_code, base_offset)]."""
    w = Writer()

    def partition(w, p, err, base):
        # LogAppendTimeMs -1, LogStartOffset 0, RecordErrors [], ErrorMessage null
        w.int32(p).int16(err).int64(base).int64(-1).int64(0).compact_array_len([]).compact_string(None)

    _write_topics(w, parts, partition)
    return w.int32(throttle_time_ms).empty_tags().bytes()


def decode_produce_response_v9(body):
    """[(topic, partition, error_code, base_offset)]."""
    r = body if isinstance(body, Reader) else Reader(body)

    def partition(r):
        p, err, base = r.int32("index"), r.int16("error_code"), r.int64("base_offset")
        r.int64("log_append_time_ms")
        r.int64("log_start_offset")

        def record_error():
            r.int32("batch_index")
            r.compact_string(nullable=True, what="batch_index_error_message")
            r.tagged_fields("record error tags")

        r.compact_array(record_error, 5, what="record_errors")
        r.compact_string(nullable=True, what="error_message")
        return p, err, base

    parts = _read_topics(r, partition, "produce response")
    r.int32("throttle_time_ms")
    r.tagged_fields("response tags")
    r.end(True, "ProduceResponse v9")
    return parts


def decode_fetch_request_v12(body):
    """[(topic, partition, fetch_offset)] of a FetchRequest v12 body."""
    r = body if isinstance(body, Reader) else Reader(body)
    for what in ("replica_id", "max_wait_ms", "min_bytes", "max_bytes"):
        r.int32(what)
    r.int8("isolation_level")
    r.int32("session_id")
    r.int32("session_epoch")

    def partition(r):
        p = r.int32("partition")
        r.int32("current_leader_epoch")
        offset = r.int64("fetch_offset")
        r.int32("last_fetched_epoch")
        r.int64("log_start_offset")
        r.int32("partition_max_bytes")
        return p, offset

    parts = _read_topics(r, partition, "fetch")

    def forgotten():
        r.compact_string(what="forgotten topic")
        r.compact_int32_array("forgotten partitions")
        r.tagged_fields("forgotten topic tags")

    r.compact_array(forgotten, 2, what="forgotten_topics_data")
    r.compact_string(what="rack_id")
    r.tagged_fields("request tags")
    return parts


def fetch_response_v12(parts, error_code=0, session_id=0, throttle_time_ms=0):
    """Body of FetchResponse v12; parts: [(topic, partition, error_code, high_watermark, records bytes or None)]."""
    w = Writer().int32(throttle_time_ms).int16(error_code).int32(session_id)

    def partition(w, p, err, hw, records):
        # LastStableOffset = HighWatermark, LogStartOffset 0, AbortedTransactions null, PreferredReadReplica -1
        w.int32(p).int16(err).int64(hw).int64(hw).int64(0).compact_array_len(None).int32(-1).compact_bytes(records)

    _write_topics(w, parts, partition)
    return w.empty_tags().bytes()


def decode_fetch_response_v12(body):
    """(error_code, session_id, [(topic, partition, error_code, high_watermark, records bytes or None)])."""
    r = body if isinstance(body, Reader) else Reader(body)
    r.int32("throttle_time_ms")
    error_code, session_id = r.int16("error_code"), r.int32("session_id")

    def partition(r):
        p, err, hw = r.int32("partition_index"), r.int16("error_code"), r.int64("high_watermark")
        r.int64("last_stable_offset")
        r.int64("log_start_offset")

        def aborted():
            r.int64("producer_id")
            r.int64("first_offset")
            r.tagged_fields("aborted transaction tags")

        r.compact_array(aborted, 17, nullable=True, what="aborted_transactions")
        r.int32("preferred_read_replica")
        return p, err, hw, r.compact_bytes(nullable=True, what="records")

    parts = _read_topics(r, partition, "fetch response")
    r.tagged_fields("response tags")
    r.end(True, "FetchResponse v12")
    return error_code, session_id, parts


def list_offsets_request_v7(parts, isolation_level=0):
    """Body of ListOffsetsRequest v7; parts: [(topic, partition, timestamp)] (-1: latest, -2: earliest)."""
    w = Writer().int32(-1).int8(isolation_level)
    _write_topics(w, parts, lambda w, p, ts: w.int32(p).int32(-1).int64(ts))  # CurrentLeaderEpoch -1
    return w.empty_tags().bytes()


def decode_list_offsets_request_v7(body):
    r = body if isinstance(body, Reader) else Reader(body)
    r.int32("replica_id")
    r.int8("isolation_level")

    def partition(r):
        p = r.int32("partition_index")
        r.int32("current_leader_epoch")
        return p, r.int64("timestamp")

    parts = _read_topics(r, partition, "list offsets")
    r.tagged_fields("request tags")
    return parts


def list_offsets_response_v7(parts, throttle_time_ms=0):
    """Body of ListOffsetsResponse v7; parts: [(topic, partition, error_code, offset)]."""
    w = Writer().int32(throttle_time_ms)
    _write_topics(w, parts, lambda w, p, err, off: w.int32(p).int16(err).int64(-1).int64(off).int32(0))
    return w.empty_tags().bytes()


def decode_list_offsets_response_v7(body):
    """[(topic, partition, error_code, offset)]."""
    r = body if isinstance(body, Reader) else Reader(body)
    r.int32("throttle_time_ms")

    def partition(r):
        p, err = r.int32("partition_index"), r.int16("error_code")
        r.int64("timestamp")
        off = r.int64("offset")
        r.int32("leader_epoch")
        return p, err, off

    parts = _read_topics(r, partition, "list offsets response")
    r.tagged_fields("response tags")
    r.end(True, "ListOffsetsResponse v7")
    return parts


def offset_for_leader_epoch_request_v4(parts):
    """Body of OffsetForLeaderEpochRequest v4; parts: [(topic, partition, leader_epoch)]."""
    w = Writer().int32(-1)  # ReplicaId: a consumer
    _write_topics(w, parts, lambda w, p, epoch: w.int32(p).int32(-1).int32(epoch))
    return w.empty_tags().bytes()


def decode_offset_for_leader_epoch_request_v4(body):
    r = body if isinstance(body, Reader) else Reader(body)
    r.int32("replica_id")

    def partition(r):
        p = r.int32("partition")
        r.int32("current_leader_epoch")
        return p, r.int32("leader_epoch")

    parts = _read_topics(r, partition, "offset for leader epoch")
    r.tagged_fields("request tags")
    return parts


def offset_for_leader_epoch_response_v4(parts, throttle_time_ms=0):
    """Body of OffsetForLeaderEpochResponse v4; parts: [(topic, partition, error_code, leader_epoch, end_offset)]."""
    w = Writer().int32(throttle_time_ms)
    _write_topics(w, parts, lambda w, p, err, epoch, end: w.int16(err).int32(p).int32(epoch).int64(end))
    return w.empty_tags().bytes()


def decode_offset_for_leader_epoch_response_v4(body):
    """[(topic, partition, error_code, leader_epoch, end_offset)]."""
    r = body if isinstance(body, Reader) else Reader(body)
    r.int32("throttle_time_ms")

    def partition(r):
        err, p = r.int16("error_code"), r.int32("partition")
        return p, err, r.int32("leader_epoch"), r.int64("end_offset")

    parts = _read_topics(r, partition, "offset for leader epoch response")
    r.tagged_fields("response tags")
    r.end(True, "OffsetForLeaderEpochResponse v4")
    return parts


def delete_records_request_v2(parts, timeout_ms=10000):
    """Body of DeleteRecordsRequest v2; parts: [(topic, partition, offset)]."""
    w = Writer()
    _write_topics(w, parts, lambda w, p, off: w.int32(p).int64(off))
    return w.int32(timeout_ms).empty_tags().bytes()


def decode_delete_records_request_v2(body):
    r = body if isinstance(body, Reader) else Reader(body)
    parts = _read_topics(r, lambda r: (r.int32("partition_index"), r.int64("offset")), "delete records")
    r.int32("timeout_ms")
    r.tagged_fields("request tags")
    return parts


def delete_records_response_v2(parts, throttle_time_ms=0):
    """Body of DeleteRecordsResponse v2; parts: [(topic, partition, error_code, low_watermark)]."""
    w = Writer().int32(throttle_time_ms)
    _write_topics(w, parts, lambda w, p, err, low: w.int32(p).int64(low).int16(err))
    return w.empty_tags().bytes()


def decode_delete_records_response_v2(body):
    """[(topic, partition, error_code, low_watermark)]."""
    r = body if isinstance(body, Reader) else Reader(body)
    r.int32("throttle_time_ms")

    def partition(r):
        p, low = r.int32("partition_index"), r.int64("low_watermark")
        return p, r.int16("error_code"), low

    parts = _read_topics(r, partition, "delete records response")
    r.tagged_fields("response tags")
    r.end(True, "DeleteRecordsResponse v2")
    return parts


def _crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _varint(v):
    """Kafka's signed varint (zigzag)."""
    w = Writer().uvarint(((v << 1) ^ (v >> 63)) & ((1 << 64) - 1) if v < 0 else v << 1)
    return w.bytes()


def record_batch(records, base_offset=0, timestamp_ms=0):
    """A v2 record batch (magic 2, uncompressed, no producer id) of [(key bytes, value bytes)]."""
    body = b""
    for i, (key, value) in enumerate(records):
        rec = b"\x00" + _varint(0) + _varint(i) + _varint(len(key)) + key + _varint(len(value)) + value + _varint(0)
        body += _varint(len(rec)) + rec
    n = len(records)
    after_crc = (struct.pack(">hiqqqhii", 0, n - 1, timestamp_ms, timestamp_ms, -1, -1, -1, n) + body)
    after_len = struct.pack(">ib", 0, 2) + struct.pack(">I", _crc32c(after_crc)) + after_crc
    return struct.pack(">qi", base_offset, len(after_len)) + after_len


def with_base_offset(batch, base_offset):
    """The same batch at another base offset (as a broker assigns it; the CRC does not cover it)."""
    return struct.pack(">q", base_offset) + batch[8:]


# ---------------------------------------------------------------- frames on the broker side

@dataclass
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: Optional[str]


def decode_request_header(r):
    """Reads a request header (v1, or v2 for the flexible versions this module knows)."""
    api_key = r.int16("request_api_key")
    api_version = r.int16("request_api_version")
    corr = r.int32("correlation_id")
    client_id = r.string(nullable=True, what="client_id")
    if is_flexible(api_key, api_version):
        r.tagged_fields("request header tags")
    return RequestHeader(api_key, api_version, corr, client_id)


def encode_response(api_key, api_version, correlation_id, body):
    """A whole response frame: size, header (v0, or v1 for flexible versions
    but ApiVersions), body."""
    w = Writer().int32(correlation_id)
    if is_flexible(api_key, api_version) and api_key != API_API_VERSIONS:
        w.empty_tags()
    payload = w.bytes() + body
    return struct.pack(">i", len(payload)) + payload


# ---------------------------------------------------------------- connection

class Connection:
    """One blocking TCP connection to a broker; every socket operation times out."""

    def __init__(self, host, port, timeout=10.0, client_id="kstretch-tests"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.client_id = client_id
        self._corr = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv_exact(self, n):
        chunks = []
        while n:
            b = self.sock.recv(min(n, 1 << 20))
            if not b:
                raise ConnectionError(f"connection closed with {n} bytes of the response still to come")
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)

    def read_frame(self):
        (size,) = struct.unpack(">i", self._recv_exact(4))
        if not 0 <= size <= MAX_FRAME_BYTES:
            raise Malformed(f"response frame size {size}")
        return self._recv_exact(size)

    def request(self, api_key, api_version, body):
        """Sends one request and returns a Reader on the response body."""
        self._corr += 1
        corr = self._corr
        self.sock.sendall(encode_request(api_key, api_version, corr, body, self.client_id))
        r = Reader(self.read_frame())
        got = decode_response_header(r, api_key, api_version)
        if got != corr:
            raise Malformed(f"response correlation id {got}, expected {corr}")
        return r

    def metadata_v12(self, topics=None, allow_auto_topic_creation=False, version=12):
        """Metadata v12 (or v13: version=13), decoded."""
        r = self.request(API_METADATA, version, metadata_request_v12(topics, allow_auto_topic_creation))
        return decode_metadata_response_v12(r, version=version)

    def find_coordinator(self, key, version=3, key_type=0):
        r = self.request(API_FIND_COORDINATOR, version, find_coordinator_request(version, key, key_type))
        return decode_find_coordinator_response(version, r)

    def find_coordinators_v4(self, keys, key_type=0):
        r = self.request(API_FIND_COORDINATOR, 4, find_coordinator_request_v4(keys, key_type))
        return decode_find_coordinator_response_v4(r)

    def api_versions(self, version=2):
        r = self.request(API_API_VERSIONS, version, b"")
        return decode_api_versions_response(version, r)


def metadata_v12(host, port, topics=None, timeout=10.0):
    with Connection(host, port, timeout) as c:
        return c.metadata_v12(topics)
