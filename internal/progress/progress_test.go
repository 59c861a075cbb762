package progress

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clock is a fake time source advanced by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Unix(1_000_000, 0)} }
func lines(s string) []string            { return strings.Split(s, "\r")[1:] }
func trimmed(s string) string            { return strings.TrimRight(s, " \n") }
func newTestBar(total int, label string) (*Bar, *clock, *bytes.Buffer) {
	c, buf := newClock(), &bytes.Buffer{}
	return newBar(buf, total, label, c.now), c, buf
}

func TestQuietWhenNotATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	var buf bytes.Buffer
	for name, b := range map[string]*Bar{
		"nil writer":  New(nil, 10, "x"),
		"buffer":      New(&buf, 10, "x"),
		"file":        New(f, 10, "x"),
		"/dev/null":   New(null, 10, "x"),
		"nil bar":     nil,
		"typed nil f": New((*os.File)(nil), 10, "x"),
	} {
		if !b.Quiet() {
			t.Errorf("%s: bar is not quiet", name)
		}
		b.Set(3, "loss 1")
		b.Set(10, "")
		b.Done()
	}
	if buf.Len() != 0 {
		t.Errorf("buffer got %q", buf.String())
	}
	if fi, _ := f.Stat(); fi.Size() != 0 {
		t.Errorf("file got %d bytes", fi.Size())
	}
}

func TestLineContents(t *testing.T) {
	b, c, buf := newTestBar(100, "sample")
	c.advance(2 * time.Second)
	b.Set(25, "loss 0.125")
	got := lines(buf.String())
	if len(got) != 1 {
		t.Fatalf("want 1 line, got %q", buf.String())
	}
	// 25 steps in 2 s = 12.5 it/s; 75 left = 6 s.
	want := "sample [======>                 ] 25/100  25%  12.5 it/s  ETA 6.0s  loss 0.125"
	if got[0] != want {
		t.Errorf("line\n got %q\nwant %q", got[0], want)
	}
	c.advance(6 * time.Second)
	b.Set(100, "")
	b.Done()
	got = lines(buf.String())
	last := got[len(got)-1]
	if !strings.HasSuffix(last, "\n") {
		t.Errorf("Done does not end the line: %q", last)
	}
	want = "sample [========================] 100/100 100%  12.5 it/s  in 8.0s"
	if trimmed(last) != want {
		t.Errorf("final line\n got %q\nwant %q", trimmed(last), want)
	}
	n := len(buf.String())
	b.Set(3, "")
	b.Done()
	if len(buf.String()) != n {
		t.Errorf("bar drew after Done: %q", buf.String()[n:])
	}
}

func TestSlowStepsAndLongETA(t *testing.T) {
	b, c, buf := newTestBar(250, "")
	c.advance(30 * time.Second)
	b.Set(10, "")
	// 3 s per step, 240 left = 720 s = 12m00s.
	want := "[>                       ] 10/250   4%  3.0 s/it  ETA 12m00s"
	if got := lines(buf.String())[0]; got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
	c.advance(2*time.Hour + 30*time.Second)
	b.Set(11, "")
	// 11 steps in 7260 s = 660 s per step, 239 left = 43h49m00s.
	got := lines(buf.String())
	if !strings.HasSuffix(got[len(got)-1], "660.0 s/it  ETA 43h49m00s") {
		t.Errorf("long ETA not in hours: %q", got[len(got)-1])
	}
}

func TestUnknownTotal(t *testing.T) {
	b, c, buf := newTestBar(0, "train")
	c.advance(time.Second)
	b.Set(500, "loss 0.5")
	want := "train 500  500 it/s  loss 0.5"
	if got := lines(buf.String())[0]; got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
}

func TestThrottle(t *testing.T) {
	b, c, buf := newTestBar(1000, "t")
	// 1000 steps over 1 s, one per millisecond: about 10 redraws plus the
	// first and the last.
	for i := 1; i <= 1000; i++ {
		c.advance(time.Millisecond)
		b.Set(i, "")
	}
	n := len(lines(buf.String()))
	if n < 10 || n > 12 {
		t.Errorf("%d redraws for 1000 steps in 1 s, want about 10", n)
	}
	if last := lines(buf.String())[n-1]; !strings.Contains(last, "1000/1000") {
		t.Errorf("last step not drawn: %q", last)
	}
}

func TestShorterLineBlanksTail(t *testing.T) {
	b, c, buf := newTestBar(10, "x")
	c.advance(time.Second)
	b.Set(1, "a long extra text here")
	c.advance(time.Second)
	b.Set(2, "")
	got := lines(buf.String())
	if len(got[1]) < len(got[0]) {
		t.Errorf("second line %q does not cover the first %q", got[1], got[0])
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                          "0.0s",
		1500 * time.Millisecond:               "1.5s",
		42 * time.Second:                      "42s",
		185 * time.Second:                     "3m05s",
		time.Hour + 2*time.Minute + 3e9:       "1h02m03s",
		59*time.Minute + 59*time.Second + 6e8: "1h00m00s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestFormatRate(t *testing.T) {
	for r, want := range map[float64]string{
		0.25: "4.0 s/it",
		1:    "1.0 it/s",
		12.5: "12.5 it/s",
		250:  "250 it/s",
	} {
		if got := formatRate(r); got != want {
			t.Errorf("formatRate(%v) = %q, want %q", r, got, want)
		}
	}
}

func TestConcurrentSet(t *testing.T) {
	b, _, _ := newTestBar(100, "c")
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 100; i++ {
				b.Set(i, "")
			}
			done <- true
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	b.Done()
}
