package webui_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/agent-swarm/agent-swarm/mcp"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/transport"
	"github.com/agent-swarm/agent-swarm/webui"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"
)

func openNode(t *testing.T, domain string) *node.Node {
	t.Helper()
	port, err := transport.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if _, err := node.Init(home, node.InitOptions{Domain: domain, Listen: fmt.Sprintf("127.0.0.1:%d", port)}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := node.LoadConfig(home)
	cfg.Heartbeat = node.Duration(300 * time.Millisecond)
	cfg.RetryMin, cfg.RetryMax = node.Duration(20*time.Millisecond), node.Duration(200*time.Millisecond)
	if err := node.SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(home, node.Options{Serve: true, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// pair makes a swarm "team" of a (master) and b.
func pair(t *testing.T) (a, b *node.Node) {
	t.Helper()
	a, b = openNode(t, "a.test"), openNode(t, "b.test")
	if _, err := a.Create(node.CreateArgs{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	inv, err := a.Invite(node.InviteArgs{Swarm: "team"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(context.Background(), inv.Token); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// browser starts a headless Chromium (Debian's chromium; .ci/run
// installs it). Without one the test is skipped, except in CI.
func browser(t *testing.T) context.Context {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium on PATH (.ci/run installs it)")
		}
		t.Skip("no chromium on PATH")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatal(err)
	}
	return ctx
}

// tab opens a new tab (its own sessionStorage) in the browser.
func tab(t *testing.T, b context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab for ctx's lifetime
		t.Fatal(err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitJS polls a boolean expression in the page for up to 5 s.
func waitJS(t *testing.T, ctx context.Context, what, expr string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if eval[bool](t, ctx, expr) {
			return time.Since(start)
		}
		if time.Since(start) > 5*time.Second {
			state := eval[string](t, ctx, `document.getElementById("state").textContent`)
			html := eval[string](t, ctx, `document.querySelector("main").outerHTML`)
			t.Fatalf("timed out waiting until %s (state %q)\n%s", what, state, html)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPageInChromium drives the page in a real headless Chromium: it
// refuses without the token (and with a wrong one), loads with it, shows
// the swarm's members with their keys, shows a peer's message as it
// arrives (a body with <script> as text, nothing run), and its actions
// work: the message it sends reaches the peer, read and mute take effect.
func TestPageInChromium(t *testing.T) {
	a, b := pair(t)
	token, err := webui.LoadOrCreateToken(a.Home())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := webui.Serve("127.0.0.1:0", mcp.NodeCaller{Node: a}, token, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	base := "http://" + srv.Addr + "/"
	br := browser(t)

	for _, c := range []struct{ name, url string }{
		{"no token", base},
		{"wrong token", base + "#token=" + strings.Repeat("0", 64)},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := tab(t, br)
			run(t, p, chromedp.Navigate(c.url))
			waitJS(t, p, "the page says it is refused", `document.getElementById("state").textContent.startsWith("Refused")`)
			hidden := eval[bool](t, p, `document.getElementById("main").hidden`)
			members := eval[int](t, p, `document.querySelectorAll("[data-member]").length`)
			if !hidden || members != 0 {
				t.Fatalf("refused page shows data: hidden %v, members %d", hidden, members)
			}
		})
	}

	p := tab(t, br)
	run(t, p, chromedp.Navigate(webui.URL(srv.Addr, token)))
	waitJS(t, p, "the stream is connected", `document.getElementById("state").textContent.startsWith("connected")`)
	loc := eval[string](t, p, `location.href`)
	self := eval[string](t, p, `document.getElementById("self").textContent`)
	if strings.Contains(loc, token) {
		t.Fatalf("the token stays in the address bar: %s", loc)
	}
	if !strings.HasPrefix(self, "a.test ") {
		t.Fatalf("header: %q", self)
	}
	waitJS(t, p, "b.test is listed with its key and a claimed name",
		`[...document.querySelectorAll('[data-member="b.test"] td')].map(td => td.textContent).join("|").includes("|claimed|")`)

	// A peer's message, hostile markup included, shows as text.
	evil := `<script>window.pwned=1</script><img src=x onerror="window.pwned=2"><b>bold</b> hello from b`
	res, err := b.Send(context.Background(), node.SendArgs{Swarm: "team", To: "a.test", Body: evil, Wait: 5 * time.Second})
	if err != nil || len(res.Deliveries) != 1 || res.Deliveries[0].Status != node.Delivered {
		t.Fatalf("b's send: %+v %v", res, err)
	}
	took := waitJS(t, p, "b's message is shown", fmt.Sprintf(
		`[...document.querySelectorAll("#messages .body")].some(e => e.textContent === %q)`, evil))
	t.Logf("the page showed the message %v after its arrival", took.Round(time.Millisecond))
	pwned := eval[string](t, p, `String(window.pwned)`)
	markup := eval[int](t, p, `document.querySelectorAll("#messages script, #messages img, #messages b").length`)
	if pwned != "undefined" || markup != 0 {
		t.Fatalf("peer markup ran or rendered: pwned %s, elements %d", pwned, markup)
	}

	// Read: the button marks it read at the node.
	run(t, p, chromedp.Click(chromedp.CSS(fmt.Sprintf(`li[data-id="%s"] .mark-read`, res.ID))))
	waitForNode(t, "a marks the message read", func() bool {
		ms, _ := a.Inbox(node.InboxArgs{})
		for _, m := range ms {
			if m.ID == res.ID {
				return m.Read
			}
		}
		return false
	})

	// Send: the peer receives what the page sends; the outbox shows it
	// delivered.
	run(t, p,
		chromedp.SetValue(chromedp.CSS("#send-body"), "hello b, from the page"),
		chromedp.Click(chromedp.CSS("#send-button")))
	waitForNode(t, "b receives the page's message", func() bool {
		ms, _ := b.Inbox(node.InboxArgs{})
		for _, m := range ms {
			if m.Body == "hello b, from the page" && m.From == "a.test" {
				return true
			}
		}
		return false
	})
	waitJS(t, p, "the outbox shows the delivery", `[...document.querySelectorAll("#outbox tbody tr")].some(tr => tr.textContent.includes("b.test") && tr.textContent.includes("delivered"))`)

	// Mute: the member's button mutes the agent at the node.
	run(t, p, chromedp.Click(chromedp.CSS(`button[data-agent="b.test"]`)))
	waitForNode(t, "b.test is muted", func() bool {
		ms, _ := a.Members("team")
		for _, m := range ms {
			if m.Domain == "b.test" {
				return m.Muted
			}
		}
		return false
	})
}

func waitForNode(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAPIRefusesWhatItMust: without the token, with another site's
// Origin, or under a host name that is not loopback (DNS rebinding), the
// API answers nothing; an unknown operation is named.
func TestAPIRefusesWhatItMust(t *testing.T) {
	a := openNode(t, "a.test")
	token, _ := webui.LoadOrCreateToken(a.Home())
	srv, err := webui.Serve("127.0.0.1:0", mcp.NodeCaller{Node: a}, token, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := webui.CheckListen("0.0.0.0:8080"); err == nil {
		t.Fatal("a non-loopback UI address was accepted")
	}
	for _, c := range []struct {
		name, path, auth, origin, host string
		want                           int
	}{
		{"with the token", "/v1/ops/status", "Bearer " + token, "", "", 200},
		{"no token", "/v1/ops/status", "", "", "", 401},
		{"wrong token", "/v1/ops/status", "Bearer " + strings.Repeat("f", 64), "", "", 401},
		{"token as a cookie", "/v1/ops/status", "", "", "", 401},
		{"another site's page", "/v1/ops/status", "Bearer " + token, "http://evil.example", "", 403},
		{"rebound host name", "/v1/ops/status", "Bearer " + token, "", "evil.example:80", 403},
		{"unknown operation", "/v1/ops/nosuch", "Bearer " + token, "", "", 404},
	} {
		req, _ := http.NewRequest("POST", "http://"+srv.Addr+c.path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		if c.name == "token as a cookie" {
			req.AddCookie(&http.Cookie{Name: "token", Value: token})
		}
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		if c.host != "" {
			req.Host = c.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
}
