// kstretch-franz produces records with franz-go (github.com/twmb/franz-go,
// pkg/kgo) and reads them back in a consumer group: the Go client in the
// client-program contract of tests/integration/clients/python_roundtrip.py.
//
//	kstretch-franz BOOTSTRAP TOPIC GROUP|- INPUT EXPECTED TIMEOUT_S [OPTION...]
//
// INPUT is a file of KEY<TAB>VALUE lines to produce in order ("-" to produce
// nothing); EXPECTED is how many records to read back in consumer group GROUP
// from the earliest offset (0: do not consume). Consumed records are written
// to stdout as PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE lines in consumption
// order; "client-version: franz-go vX.Y.Z" goes to stderr. GROUP "-" reads
// without a group: franz-go's direct consumer, every partition of TOPIC
// from its start, nothing committed. Everything is
// bounded by TIMEOUT_S seconds (and a few more to commit and leave the group).
//
// Records are partitioned as the Java client does with a key (murmur2 of the
// key, modulo the partition count): one key, one partition.
//
// Options:
//
//	--idempotent      idempotent producer (franz-go's default; needs --acks all)
//	--no-idempotent   plain producer, one produce request in flight per broker
//	--acks all|1      acks=all (default) or leader only (implies --no-idempotent)
//	--rack RACK       the client's rack (KIP-392 fetch from a follower)
//	--client-id ID    client.id sent with every request (default kstretch-franz)
//	--log-level L     franz-go's log on stderr: none, error, warn (default), info, debug
//	--sasl MECHANISM:USER:PASSWORD
//	                  authenticate every connection with SASL (no TLS): PLAIN,
//	                  SCRAM-SHA-256 or SCRAM-SHA-512 (franz-go's pkg/sasl)
//	--tls-ca FILE     connect with TLS, trusting the CAs in the PEM FILE (the
//	                  server name checked is each broker's host)
//	--member          one member of consumer group GROUP (INPUT "-", EXPECTED 0), in the
//	                  member contract of tests/kafka/groupmembers.py: records and
//	                  "#assigned P,..", "#revoked P,.." lines on stdout; it commits
//	                  after each poll and before partitions are taken from it; a line
//	                  on stdin (or its end) makes it commit, leave the group, write
//	                  "#closed" and exit 0; not told to stop within TIMEOUT_S: exit 4
//	--max-api-version API=N
//	                  never send API (a name such as JoinGroup, or a key number)
//	                  above version N, whatever the broker offers; repeatable.
//	                  For brokers that offer versions they cannot read, as
//	                  librdkafka's mock does with some flexible versions
//
// Exit codes: 0 ok, 1 the client could not be set up, 2 usage, 3 produce
// failed, 4 fewer records than expected in time.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const (
	franzModule = "github.com/twmb/franz-go"
	usage       = "usage: kstretch-franz BOOTSTRAP TOPIC GROUP|- INPUT EXPECTED TIMEOUT_S [--idempotent | --no-idempotent] " +
		"[--acks all|1] [--rack RACK] [--client-id ID] [--log-level none|error|warn|info|debug] [--sasl MECH:USER:PASSWORD] [--tls-ca FILE] " +
		"[--max-api-version API=N ...] [--member]"
	// Once the deadline has passed: time still given to commit the offsets
	// read and to leave the group.
	finishTimeout = 10 * time.Second
	pollMax       = 5000
	reportedFails = 5
)

type options struct {
	bootstrap  []string
	topic      string
	group      string
	input      string
	expected   int
	timeout    time.Duration
	idempotent bool
	acksAll    bool
	rack       string
	clientID   string
	logLevel   kgo.LogLevel
	logOff     bool
	maxVers    *kversion.Versions // nil: franz-go's own
	sasl       sasl.Mechanism     // nil: no authentication
	tls        *tls.Config        // nil: plaintext
	member     bool
}

type record struct{ key, value string }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func parseArgs(argv []string) (*options, error) {
	if len(argv) < 6 {
		return nil, errors.New("missing arguments")
	}
	o := &options{topic: argv[1], group: argv[2], input: argv[3], acksAll: true, idempotent: true,
		clientID: "kstretch-franz", logLevel: kgo.LogLevelWarn}
	for _, s := range strings.Split(argv[0], ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.bootstrap = append(o.bootstrap, s)
		}
	}
	if len(o.bootstrap) == 0 || o.topic == "" {
		return nil, errors.New("empty BOOTSTRAP or TOPIC")
	}
	n, err := strconv.Atoi(argv[4])
	if err != nil || n < 0 {
		return nil, fmt.Errorf("EXPECTED %q is not a count", argv[4])
	}
	o.expected = n
	secs, err := strconv.ParseFloat(argv[5], 64)
	if err != nil || secs <= 0 {
		return nil, fmt.Errorf("TIMEOUT_S %q is not a positive number", argv[5])
	}
	o.timeout = time.Duration(secs * float64(time.Second))
	explicitIdempotent, noIdempotent := false, false
	rest := argv[6:]
	for len(rest) > 0 {
		a := rest[0]
		rest = rest[1:]
		value := func() (string, error) {
			if len(rest) == 0 {
				return "", fmt.Errorf("%s needs a value", a)
			}
			v := rest[0]
			rest = rest[1:]
			return v, nil
		}
		switch a {
		case "--idempotent":
			explicitIdempotent = true
		case "--member":
			o.member = true
		case "--no-idempotent":
			noIdempotent = true
		case "--acks":
			v, err := value()
			if err != nil {
				return nil, err
			}
			switch v {
			case "all", "-1":
				o.acksAll = true
			case "1":
				o.acksAll = false
			default:
				return nil, fmt.Errorf("--acks %q: all or 1", v)
			}
		case "--rack":
			v, err := value()
			if err != nil {
				return nil, err
			}
			o.rack = v
		case "--client-id":
			v, err := value()
			if err != nil {
				return nil, err
			}
			o.clientID = v
		case "--log-level":
			v, err := value()
			if err != nil {
				return nil, err
			}
			levels := map[string]kgo.LogLevel{"error": kgo.LogLevelError, "warn": kgo.LogLevelWarn,
				"info": kgo.LogLevelInfo, "debug": kgo.LogLevelDebug}
			if v == "none" {
				o.logOff = true
			} else if l, ok := levels[v]; ok {
				o.logLevel = l
			} else {
				return nil, fmt.Errorf("--log-level %q: none, error, warn, info or debug", v)
			}
		case "--sasl":
			v, err := value()
			if err != nil {
				return nil, err
			}
			if o.sasl, err = saslMechanism(v); err != nil {
				return nil, err
			}
		case "--tls-ca":
			v, err := value()
			if err != nil {
				return nil, err
			}
			pem, err := os.ReadFile(v)
			if err != nil {
				return nil, fmt.Errorf("--tls-ca: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--tls-ca %q: no PEM certificate in it", v)
			}
			o.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		case "--max-api-version":
			v, err := value()
			if err != nil {
				return nil, err
			}
			if o.maxVers == nil {
				o.maxVers = kversion.Stable()
			}
			if err := capVersion(o.maxVers, v); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown option %q", a)
		}
	}
	if explicitIdempotent && (noIdempotent || !o.acksAll) {
		return nil, errors.New("--idempotent needs --acks all and no --no-idempotent")
	}
	o.idempotent = o.acksAll && !noIdempotent
	return o, nil
}

// saslMechanism is the franz-go mechanism of one --sasl MECHANISM:USER:PASSWORD.
func saslMechanism(spec string) (sasl.Mechanism, error) {
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) != 3 || parts[1] == "" {
		return nil, fmt.Errorf("--sasl %q: MECHANISM:USER:PASSWORD", spec)
	}
	user, pass := parts[1], parts[2]
	switch strings.ToUpper(parts[0]) {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("--sasl %q: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", spec)
}

// capVersion applies one API=N of --max-api-version to vs.
func capVersion(vs *kversion.Versions, spec string) error {
	name, num, ok := strings.Cut(spec, "=")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 0 {
		return fmt.Errorf("--max-api-version %q: API=N", spec)
	}
	key := int16(-1)
	if k, err := strconv.Atoi(name); err == nil {
		key = int16(k)
	} else {
		for k := int16(0); k < 200; k++ {
			if strings.EqualFold(kmsg.NameForKey(k), name) {
				key = k
				break
			}
		}
	}
	top, known := vs.LookupMaxKeyVersion(key)
	if key < 0 || !known {
		return fmt.Errorf("--max-api-version %q: no API %q in franz-go", spec, name)
	}
	if n < int(top) {
		vs.SetMaxKeyVersion(key, int16(n))
	}
	return nil
}

func readInput(path string) ([]record, error) {
	if path == "-" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			return nil, fmt.Errorf("%s:%d: not KEY<TAB>VALUE", path, n)
		}
		out = append(out, record{k, v})
	}
	return out, sc.Err()
}

// franzVersion is the franz-go module version linked into this binary.
func franzVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == franzModule {
			if dep.Replace != nil {
				return dep.Replace.Version
			}
			return dep.Version
		}
	}
	return "unknown"
}

func commonOpts(o *options) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(o.bootstrap...), kgo.ClientID(o.clientID)}
	if !o.logOff {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, o.logLevel, nil)))
	}
	if o.rack != "" {
		opts = append(opts, kgo.Rack(o.rack))
	}
	if o.maxVers != nil {
		opts = append(opts, kgo.MaxVersions(o.maxVers))
	}
	if o.sasl != nil {
		opts = append(opts, kgo.SASL(o.sasl))
	}
	if o.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(o.tls))
	}
	return opts
}

func produce(o *options, recs []record, deadline time.Time) int {
	opts := append(commonOpts(o),
		kgo.DefaultProduceTopic(o.topic),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordDeliveryTimeout(time.Until(deadline)))
	if o.acksAll {
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	} else {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	}
	if !o.idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		logf("producer: %v", err)
		return 1
	}
	defer cl.Close()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	var mu sync.Mutex
	failed, acked := 0, 0
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Key: []byte(r.key), Value: []byte(r.value)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if failed <= reportedFails {
					logf("delivery failed: %v", err)
				}
			} else {
				acked++
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		logf("flush: %v", err)
	}
	// Records still buffered fail when the client closes; their callbacks
	// run before Close returns.
	cl.Close()
	wg.Wait()
	if failed > 0 || acked != len(recs) {
		logf("%d of %d deliveries failed (%d acknowledged)", len(recs)-acked, len(recs), acked)
		return 3
	}
	return 0
}

func consume(o *options, deadline time.Time) int {
	direct := o.group == "-"
	opts := append(commonOpts(o),
		kgo.ConsumeTopics(o.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond))
	if !direct { // a direct consumer commits nothing: franz-go refuses commit options without a group
		opts = append(opts, kgo.ConsumerGroup(o.group), kgo.DisableAutoCommit())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		logf("consumer: %v", err)
		return 1
	}
	defer cl.Close()
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	got := 0
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	errorsLogged := 0
	for got < o.expected && ctx.Err() == nil {
		fetches := cl.PollRecords(ctx, pollMax)
		if fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if errorsLogged++; errorsLogged <= 20 {
				logf("consumer error: %s[%d]: %v", topic, partition, err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			fmt.Fprintf(out, "%d\t%d\t%s\t%s\n", r.Partition, r.Offset, r.Key, r.Value)
			got++
		})
	}
	if err := out.Flush(); err != nil {
		logf("stdout: %v", err)
		return 1
	}
	finish, cancelFinish := context.WithTimeout(context.Background(), finishTimeout)
	defer cancelFinish()
	if got > 0 && !direct {
		if err := cl.CommitUncommittedOffsets(finish); err != nil {
			logf("commit: %v", err)
		}
	}
	if !direct {
		if err := cl.LeaveGroupContext(finish); err != nil {
			logf("leave group: %v", err)
		}
	}
	if got < o.expected {
		logf("read %d of %d records before the deadline", got, o.expected)
		return 4
	}
	return 0
}

func run(argv []string) int {
	o, err := parseArgs(argv)
	if err != nil {
		logf("%v\n%s", err, usage)
		return 2
	}
	deadline := time.Now().Add(o.timeout)
	logf("client-version: franz-go %s", franzVersion())
	recs, err := readInput(o.input)
	if err != nil {
		logf("input: %v", err)
		return 2
	}
	if len(recs) > 0 {
		if status := produce(o, recs, deadline); status != 0 {
			return status
		}
	}
	if o.member {
		return member(o, deadline)
	}
	if o.expected == 0 {
		return 0
	}
	return consume(o, deadline)
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// member is --member: one member of o.group until a line (or the end) on stdin.
func member(o *options, deadline time.Time) int {
	if o.group == "-" {
		logf("--member needs a GROUP")
		return 2
	}
	var mu sync.Mutex // stdout's lines, from the poll loop and the rebalance callbacks
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	emit := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format, args...)
		if err := out.Flush(); err != nil {
			logf("stdout: %v", err)
		}
	}
	list := func(m map[string][]int32) string {
		var ps []string
		for _, p := range m[o.topic] {
			ps = append(ps, strconv.Itoa(int(p)))
		}
		return strings.Join(ps, ",")
	}
	opts := append(commonOpts(o),
		kgo.ConsumeTopics(o.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.ConsumerGroup(o.group),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			emit("#assigned %s\n", list(m))
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				logf("commit before revoke: %v", err)
			}
			emit("#revoked %s\n", list(m))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			emit("#revoked %s\n", list(m))
		}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		logf("member: %v", err)
		return 1
	}
	defer cl.Close()
	stop := make(chan struct{})
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		close(stop)
	}()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	errorsLogged := 0
	for {
		select {
		case <-stop:
			finish, cancelFinish := context.WithTimeout(context.Background(), finishTimeout)
			defer cancelFinish()
			if err := cl.CommitUncommittedOffsets(finish); err != nil {
				logf("commit: %v", err)
				return 1
			}
			cl.AllowRebalance()
			if err := cl.LeaveGroupContext(finish); err != nil {
				logf("leave group: %v", err)
				return 1
			}
			emit("#closed\n")
			return 0
		default:
		}
		if ctx.Err() != nil {
			logf("member: not told to stop within the timeout")
			return 4
		}
		poll, cancelPoll := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := cl.PollRecords(poll, pollMax)
		cancelPoll()
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if errorsLogged++; errorsLogged <= 20 {
				logf("consumer error: %s[%d]: %v", topic, partition, err)
			}
		})
		var sb strings.Builder
		fetches.EachRecord(func(r *kgo.Record) {
			fmt.Fprintf(&sb, "%d\t%d\t%s\t%s\n", r.Partition, r.Offset, r.Key, r.Value)
		})
		if sb.Len() > 0 {
			emit("%s", sb.String())
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				logf("commit: %v", err)
			}
		}
		cl.AllowRebalance()
	}
}
