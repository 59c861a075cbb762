package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Busy draws the label and the elapsed time until stopped, then ends the
// line with the total; it is silent off a terminal.
func TestBusy(t *testing.T) {
	var mu sync.Mutex
	clock := time.Unix(0, 0)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(700 * time.Millisecond)
		return clock
	}
	var buf bytes.Buffer
	stop := busy(&buf, "loading VAE vae/", now, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	stop()
	stop() // a second stop does nothing
	out := buf.String()
	lines := strings.Split(strings.TrimPrefix(out, "\r"), "\r")
	if len(lines) < 3 || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("output %q: want several redraws and one final newline", out)
	}
	if !strings.HasPrefix(lines[0], "loading VAE vae/ … 0.7s") {
		t.Errorf("first draw %q", lines[0])
	}
	var quiet bytes.Buffer
	Busy(&quiet, "x")()
	if quiet.Len() != 0 {
		t.Errorf("Busy on a buffer drew %q", quiet.String())
	}
}
