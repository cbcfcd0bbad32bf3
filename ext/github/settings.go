package github

import (
	"fmt"
	"net/url"
	"time"
)

// MinPollEvery is the floor of poll_every. Each poll is several requests
// (issues, events, comments): at 200 ms a bot made ~880 requests a minute
// and met GitHub's secondary limits; webhooks are the way to hear sooner.
// The floor protects GitHub: an api_url on a loopback address (the
// tests' fake) is exempt.
const MinPollEvery = 10 * time.Second

// checkSettings refuses a config.json "github" section the node cannot
// run with, naming the setting, before anything starts.
func checkSettings(s Settings) error {
	if err := checkAPIURL(s.APIURL); err != nil {
		return fmt.Errorf("config.json \"github\": api_url: %w", err)
	}
	if d := time.Duration(s.PollEvery); d < 0 || (d < MinPollEvery && d != 0 && !loopbackURL(s.APIURL)) {
		return fmt.Errorf("config.json \"github\": poll_every %s is below the floor of %s (GitHub's rate limits); set %s or more, or a webhook to hear sooner",
			d, MinPollEvery, MinPollEvery)
	}
	return nil
}

// loopbackURL: the API is on this machine, not GitHub.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	return raw != "" && err == nil && loopback(u.Hostname())
}
