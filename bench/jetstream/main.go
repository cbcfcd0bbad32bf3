// Command bench-jetstream is the second baseline of `swarm bench`: NATS
// JetStream, "stored durably, then acked" by a well-known broker. It is a
// module of its own so that neither the swarm binary nor the agent-swarm
// module's dependencies carry a NATS server: linked into the swarm binary
// it added 16 MB to the binary and 5 MB of RSS and 5 ms of CPU to every
// swarm process at start (package initialisation), daemon included. The
// bench builds it with the Go toolchain (docs/performance.md).
//
//	bench-jetstream server --dir DIR
//	    an embedded NATS server with JetStream, its file store in DIR,
//	    sync_interval: always; prints its client URL, serves until
//	    SIGTERM or stdin closes.
//	bench-jetstream client --url URL --size N
//	    connects, makes the stream, prints "ready"; then per line on
//	    stdin: "pub" publishes one N-byte message and waits for its ack,
//	    answering "ok NANOSECONDS"; "rate COUNT INFLIGHT" publishes COUNT
//	    messages with INFLIGHT publishes waiting for acks at once,
//	    answering "ok MESSAGES_PER_SECOND". A failure answers "err TEXT".
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench-jetstream server --dir DIR | client --url URL --size N")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", "", "server: the file store's directory")
	url := fs.String("url", "", "client: the server's URL")
	size := fs.Int("size", 512, "client: bytes per message")
	fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "server":
		err = serve(ctx, *dir)
	case "client":
		err = client(ctx, *url, *size)
	default:
		err = fmt.Errorf("unknown mode %q: want server or client", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-jetstream:", err)
		os.Exit(1)
	}
}

// config is the server's configuration as a user would write it: one
// node, JetStream on a file store that syncs every write before the
// publish is acked.
const config = `
host: 127.0.0.1
port: -1
jetstream {
  store_dir: %s
  sync_interval: always
}
`

func serve(ctx context.Context, dir string) error {
	if dir == "" {
		return errors.New("server: no --dir for the file store")
	}
	opts := &server.Options{}
	if err := opts.ProcessConfigString(fmt.Sprintf(config, strconv.Quote(dir))); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if !opts.SyncAlways {
		return errors.New("sync_interval: always did not take")
	}
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return errors.New("server not ready after 15 s")
	}
	fmt.Println(s.ClientURL())
	// Stdin closing (the bench gone) ends it as SIGTERM does.
	go func() { bufio.NewReader(os.Stdin).ReadString('\n'); stopSelf() }()
	<-ctx.Done()
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}

func stopSelf() { syscall.Kill(os.Getpid(), syscall.SIGTERM) }

func client(ctx context.Context, url string, size int) error {
	if url == "" || size < 1 {
		return errors.New("client: want --url and --size >= 1")
	}
	nc, err := nats.Connect(url, nats.MaxReconnects(0))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"},
		Storage: jetstream.FileStorage, Replicas: 1}); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	body := []byte(strings.Repeat("x", size))
	pub := func() error { _, err := js.Publish(ctx, "bench.msg", body); return err }
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 1 && f[0] == "pub":
			t0 := time.Now()
			if err := pub(); err != nil {
				fmt.Println("err", err)
				continue
			}
			fmt.Println("ok", time.Since(t0).Nanoseconds())
		case len(f) == 3 && f[0] == "rate":
			n, err1 := strconv.Atoi(f[1])
			streams, err2 := strconv.Atoi(f[2])
			if err1 != nil || err2 != nil || n < 1 || streams < 1 {
				fmt.Println("err bad rate command")
				continue
			}
			r, err := rate(ctx, pub, n, streams)
			if err != nil {
				fmt.Println("err", err)
				continue
			}
			fmt.Println("ok", r)
		default:
			fmt.Println("err unknown command")
		}
	}
	return in.Err()
}

// rate publishes n messages, streams at a time each waiting for its ack
// (as the node's and the raw side's senders do), in messages per second.
func rate(ctx context.Context, pub func() error, n, streams int) (float64, error) {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < streams; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				if err := pub(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(n) / d.Seconds(), ctx.Err()
}
