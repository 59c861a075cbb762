// Package progress draws a one-line progress bar (step/total, rate, ETA and an
// optional extra such as the loss) on a terminal, and stays silent otherwise,
// so that logs and pipes never fill with carriage returns.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// minInterval limits redraws to about ten per second: faster is unreadable
// and costs time in tight loops.
const minInterval = 100 * time.Millisecond

// barWidth is the number of cells of the bar itself.
const barWidth = 24

// Bar is a progress bar. Its methods are safe for concurrent use, and a nil
// *Bar is a valid, silent bar.
type Bar struct {
	mu     sync.Mutex
	w      io.Writer // nil when quiet
	total  int
	label  string
	now    func() time.Time
	start  time.Time
	last   time.Time // time of the last redraw
	drawn  bool      // something has been drawn on the line
	width  int       // printed width of the last line, to blank its tail
	done   int
	extra  string
	closed bool
}

// New returns a bar for a job of total steps (total <= 0: unknown), labelled
// label. It draws on w only when w is a terminal; with a nil writer or any
// other writer it is quiet.
func New(w io.Writer, total int, label string) *Bar {
	if !IsTerminal(w) {
		w = nil
	}
	return newBar(w, total, label, time.Now)
}

// newBar is New without the terminal check and with an injectable clock.
func newBar(w io.Writer, total int, label string, now func() time.Time) *Bar {
	t := now()
	return &Bar{w: w, total: total, label: label, now: now, start: t}
}

// IsTerminal reports whether w is an *os.File attached to a terminal. It is
// false for nil, pipes, regular files, /dev/null and buffers.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	return isTerminal(f)
}

// Quiet reports whether the bar draws nothing.
func (b *Bar) Quiet() bool { return b == nil || b.w == nil }

// Set records that done steps are finished, with an optional extra text shown
// after the ETA (for example "loss 0.0312"). It redraws at most about ten
// times a second; the first call and the last step always draw.
func (b *Bar) Set(done int, extra string) {
	if b == nil || b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.done, b.extra = done, extra
	now := b.now()
	if b.drawn && now.Sub(b.last) < minInterval && (b.total <= 0 || done < b.total) {
		return
	}
	b.draw(now, false)
}

// Done draws the final state with the total elapsed time and ends the line.
// Further calls to Set and Done do nothing.
func (b *Bar) Done() {
	if b == nil || b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	b.draw(b.now(), true)
}

// draw writes the line; b.mu is held.
func (b *Bar) draw(now time.Time, final bool) {
	line := b.format(now, final)
	n := utf8.RuneCountInString(line)
	pad := ""
	if b.width > n {
		// Blank what is left of a longer previous line.
		pad = strings.Repeat(" ", b.width-n)
	}
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(b.w, "\r%s%s%s", line, pad, end)
	b.width, b.last, b.drawn = n, now, true
}

// format builds the text of one line (without \r).
func (b *Bar) format(now time.Time, final bool) string {
	elapsed := now.Sub(b.start)
	var s strings.Builder
	if b.label != "" {
		s.WriteString(b.label)
		s.WriteByte(' ')
	}
	if b.total > 0 {
		frac := float64(b.done) / float64(b.total)
		frac = min(max(frac, 0), 1)
		full := int(frac * barWidth)
		s.WriteByte('[')
		s.WriteString(strings.Repeat("=", full))
		if full < barWidth {
			s.WriteByte('>')
			s.WriteString(strings.Repeat(" ", barWidth-full-1))
		}
		s.WriteString("] ")
		fmt.Fprintf(&s, "%d/%d %3.0f%%", b.done, b.total, 100*frac)
	} else {
		fmt.Fprintf(&s, "%d", b.done)
	}
	rate := 0.0
	if secs := elapsed.Seconds(); secs > 0 && b.done > 0 {
		rate = float64(b.done) / secs
	}
	if rate > 0 {
		s.WriteString("  ")
		s.WriteString(formatRate(rate))
	}
	switch {
	case final:
		s.WriteString("  in ")
		s.WriteString(formatDuration(elapsed))
	case b.total > 0 && rate > 0 && b.done < b.total:
		s.WriteString("  ETA ")
		s.WriteString(formatDuration(time.Duration(float64(b.total-b.done) / rate * float64(time.Second))))
	}
	if b.extra != "" {
		s.WriteString("  ")
		s.WriteString(b.extra)
	}
	return s.String()
}

// formatRate prints steps per second, or seconds per step when a step takes
// longer than a second (a full-size denoiser call on CPU does).
func formatRate(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f it/s", r)
	case r >= 1:
		return fmt.Sprintf("%.1f it/s", r)
	default:
		return fmt.Sprintf("%.1f s/it", 1/r)
	}
}

// formatDuration prints 42s, 3m05s or 1h02m03s; below ten seconds it keeps a
// tenth.
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < 10*time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	sec := int64(d.Round(time.Second) / time.Second)
	h, m, s := sec/3600, sec/60%60, sec%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

// Busy shows that a step of unknown length is under way (loading a model,
// preparing its kernels): label and the time elapsed, redrawn about ten
// times a second until the returned stop is called, which ends the line
// with the total time. Like a Bar it draws only on a terminal.
func Busy(w io.Writer, label string) (stop func()) {
	if !IsTerminal(w) {
		return func() {}
	}
	return busy(w, label, time.Now, minInterval)
}

func busy(w io.Writer, label string, now func() time.Time, every time.Duration) func() {
	start := now()
	quit, done := make(chan struct{}), make(chan struct{})
	draw := func(end string) {
		fmt.Fprintf(w, "\r%s … %s%s", label, formatDuration(now().Sub(start)), end)
	}
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		draw("")
		for {
			select {
			case <-quit:
				draw("\n")
				return
			case <-t.C:
				draw("")
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
		})
	}
}
