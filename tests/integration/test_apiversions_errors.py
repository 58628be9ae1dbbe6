"""ApiVersions answers that carry an error, through kstretch in mapped mode.

A broker answers an ApiVersions request newer than it knows with
UNSUPPORTED_VERSION (35) in the v0 layout and its ranges; others answer an
error with the code and an empty or cut-short body, or in the requested
(flexible) layout. kstretch must hand each of them to the client byte for
byte (there is nothing to clamp in an error) and keep the connection open,
while a successful answer on the same connection is still clamped to what
kstretch decodes. A scripted broker gives each form on cue.
"""
import collections
import struct
import threading

import kafkawire
from fakebroker import FakeBroker

LOCALHOST = "127.0.0.1"
API_SHARE_FETCH = 78

# (request version, answer body after the header): each form a broker sends.
ERROR_FORMS = [
    # UNSUPPORTED_VERSION in the v0 layout with the broker's ranges (Metadata up to 14: a
    # success would be clamped to 13; ShareFetch: a success would hide it), answering v4 and v3.
    (4, "0023 00000003 0003 0000 000e 004e 0000 0001 0012 0000 0003"),
    (3, "0023 00000003 0003 0000 000e 004e 0000 0001 0012 0000 0002"),
    # the code and an empty array (v0 layout)
    (4, "0023 00000000"),
    # the requested, flexible layout with the error and the same ranges
    (4, "0023 04 0003 0000 000e 00 004e 0000 0001 00 0012 0000 0004 00 00000000 00"),
    # flexible, cut short after an empty array
    (3, "0023 01"),
    # the code alone
    (4, "0023"),
    # v0 layout, the ranges cut short
    (4, "0023 00000003 0003 0000 000e"),
    # a client newer than kstretch's codec (v9), answered by an older broker in the v0 layout
    (9, "0023 00000001 0012 0000 0004"),
]

# A successful v2 answer: Metadata 0..14 and ShareFetch 0..1 must not reach the client as such.
SUCCESS_V2 = "0000 00000003 0003 0000 000e 004e 0000 0001 0012 0000 0004 00000000"


def api_versions_request(version, corr):
    body = b""
    if version >= 3:  # ClientSoftwareName, ClientSoftwareVersion, no tags
        body = kafkawire.Writer().compact_string("kstretch-tests").compact_string("1").empty_tags().bytes()
    return kafkawire.encode_request(kafkawire.API_API_VERSIONS, version, corr, body)


def frame(corr, body_hex):
    payload = struct.pack(">i", corr) + bytes.fromhex(body_hex.replace(" ", ""))
    return struct.pack(">i", len(payload)) + payload


class ScriptedApiVersions:
    """ApiVersions handler: v0 (kstretch's own probe) gets the broker's usual
    answer; every other version gets the next scripted body, sent as is."""

    def __init__(self, fb, bodies):
        self.fb = fb
        self.bodies = collections.deque(bodies)
        self.sent = []
        self.lock = threading.Lock()

    def __call__(self, header, body):
        if header.api_version == 0:
            return kafkawire.api_versions_response_v0(self.fb.api_versions)
        with self.lock:
            if not self.bodies:
                return None
            data = frame(header.correlation_id, self.bodies.popleft())
            self.sent.append(data)
        return FakeBroker.Raw(data)


def test_api_versions_errors_reach_the_client_unchanged_and_the_connection_stays_open(start_kstretch):
    with FakeBroker(brokers=[(1, None)]) as fb:
        script = ScriptedApiVersions(fb, [body for _, body in ERROR_FORMS] + [SUCCESS_V2])
        fb.handlers[kafkawire.API_API_VERSIONS] = script
        k = start_kstretch(fb.bootstrap, max_node_id=1)
        before = k.metrics()

        with kafkawire.Connection(LOCALHOST, k.broker_port(1)) as conn:
            for i, (version, body) in enumerate(ERROR_FORMS):
                corr = 100 + i
                conn.sock.sendall(api_versions_request(version, corr))
                got = conn.read_frame()
                want = frame(corr, body)[4:]
                assert got == want, f"form {i} (v{version}): the client got {got.hex()}, the broker sent {want.hex()}"
            assert len(script.sent) == len(ERROR_FORMS), "not every request reached the broker"

            # The same connection still works: Metadata is rewritten as usual ...
            md = conn.metadata_v12()
            assert [(b.node_id, b.host, b.port) for b in md.brokers] == [(1, LOCALHOST, k.broker_port(1))]
            # ... and a successful ApiVersions answer is still clamped.
            ok = conn.api_versions(version=2)
            assert ok.error_code == 0
            assert ok.api_keys[kafkawire.API_METADATA] == (0, 13), "Metadata not clamped to what kstretch decodes"
            assert API_SHARE_FETCH not in ok.api_keys, "ShareFetch not hidden"
            assert ok.api_keys[kafkawire.API_API_VERSIONS] == (0, 4)

        after = k.metrics()
        assert after["kstretch_protocol_errors"] == before["kstretch_protocol_errors"]
        assert not k.log_lines("protocol error")
