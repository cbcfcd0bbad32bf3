package angie

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// TestConfig runs `angie -t` on files (the shared part, then sites), each
// included in that order inside http { } of a main configuration of its
// own. Everything Angie may write while testing goes into a temporary
// prefix that is removed afterwards: the pid file (which -t creates), the
// startup and configured error logs, the access log, the body and proxy
// temporary directories and the ACME client's directory (where the ACME
// module makes account and certificate keys as it reads the config). So it
// works as an unprivileged user, against a packaged or a source-built
// Angie, and leaves no trace in Angie's own directories.
//
// It returns what angie printed; the error says whether Angie refused.
func TestConfig(ctx context.Context, bin string, files []string) (string, error) {
	abs := make([]string, len(files))
	for i, f := range files {
		a, err := filepath.Abs(f)
		if err != nil {
			return "", err
		}
		if strings.ContainsAny(a, " ;{}'\"\n") {
			return "", fmt.Errorf("%s: a path Angie's include cannot take (spaces, quotes or braces)", a)
		}
		abs[i] = a
	}
	prefix, err := os.MkdirTemp("", "swarm-angie-check-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(prefix)
	conf := filepath.Join(prefix, "angie.conf")
	if err := os.WriteFile(conf, []byte(MainConfig(prefix, abs)), 0o600); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, "-t", "-p", prefix+"/", "-e", filepath.Join(prefix, "error.log"), "-c", conf)
	cmd.Dir = prefix
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// MainConfig is the main configuration TestConfig runs: every path in it
// absolute and inside prefix, but the files it includes.
func MainConfig(prefix string, files []string) string {
	p := func(name string) string { return filepath.Join(prefix, name) }
	var b strings.Builder
	fmt.Fprintf(&b, "# swarm angie check: a throwaway main configuration\npid %s;\nerror_log %s notice;\nevents {}\nhttp {\n", p("angie.pid"), p("error.log"))
	fmt.Fprintf(&b, "    access_log %s;\n    client_body_temp_path %s;\n    proxy_temp_path %s;\n    acme_client_path %s;\n",
		p("access.log"), p("client_body_temp"), p("proxy_temp"), p("acme"))
	for _, f := range files {
		fmt.Fprintf(&b, "    include %s;\n", f)
	}
	b.WriteString("}\n")
	return b.String()
}
