// Package membudget bounds the memory that a file, a flag or a message can
// make geca allocate. Code that sizes an allocation from outside input
// estimates the bytes first (with Bytes, which never overflows) and asks
// Check, which refuses with a clear message above the limit: by default
// three quarters of the memory the process may use (the machine's, or its
// cgroup's limit when lower), set with --max-memory or $GECA_MAX_MEMORY.
package membudget

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// EnvVar names the environment variable that sets the limit.
const EnvVar = "GECA_MAX_MEMORY"

var limit atomic.Int64 // 0: not set, use Default

// Limit returns the current limit in bytes.
func Limit() int64 {
	if l := limit.Load(); l > 0 {
		return l
	}
	return Default()
}

// Set sets the limit in bytes (0 restores the default).
func Set(n int64) { limit.Store(max(n, 0)) }

// SetFrom sets the limit from a flag value if it is not empty, else from
// $GECA_MAX_MEMORY if that is set. The error names where the bad value came
// from.
func SetFrom(flagName, flagValue string) error {
	src, v := flagName, flagValue
	if v == "" {
		src, v = "$"+EnvVar, os.Getenv(EnvVar)
	}
	if v == "" {
		return nil
	}
	n, err := Parse(v)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	Set(n)
	return nil
}

// Parse reads a size: a number of bytes with an optional unit K, M, G, T
// (powers of 1024; KB, KiB and so on are accepted too), or a percentage of
// the machine's memory ("50%").
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if strings.HasSuffix(t, "%") {
		p, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
		if err != nil || p <= 0 || p > 100 {
			return 0, fmt.Errorf("memory size %q: want a percentage in (0, 100]", s)
		}
		return int64(float64(physical()) * p / 100), nil
	}
	u := strings.ToUpper(t)
	mult := int64(1)
	for _, unit := range []struct {
		suffix string
		m      int64
	}{{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10},
		{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10},
		{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(u, unit.suffix) {
			u, mult = strings.TrimSpace(strings.TrimSuffix(u, unit.suffix)), unit.m
			break
		}
	}
	f, err := strconv.ParseFloat(u, 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f*float64(mult) >= math.MaxInt64/2 {
		return 0, fmt.Errorf("memory size %q: want a positive size such as 8G, 512M or 50%%", s)
	}
	n := int64(f * float64(mult))
	if n < 1<<20 {
		return 0, fmt.Errorf("memory size %q is under 1 MiB", s)
	}
	return n, nil
}

// Error is a refused allocation.
type Error struct {
	What  string // what would be allocated, e.g. "state of a 4096x4096 grid"
	Need  int64  // bytes (math.MaxInt64: more than can be counted)
	Limit int64
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s needs %s, over the memory limit of %s (set --max-memory or $%s to allow more)",
		e.What, Format(e.Need), Format(e.Limit), EnvVar)
}

// Check returns an *Error if bytes exceed the limit.
func Check(what string, bytes int64) error {
	if l := Limit(); bytes > l || bytes < 0 {
		if bytes < 0 {
			bytes = math.MaxInt64
		}
		return &Error{What: what, Need: bytes, Limit: l}
	}
	return nil
}

// Bytes multiplies sizes (counts of elements and bytes per element)
// without overflowing: a product that does not fit, or any negative factor,
// gives math.MaxInt64, which Check refuses.
func Bytes(factors ...int) int64 {
	p := int64(1)
	for _, f := range factors {
		if f < 0 {
			return math.MaxInt64
		}
		if f == 0 {
			return 0
		}
		if p > math.MaxInt64/int64(f) {
			return math.MaxInt64
		}
		p *= int64(f)
	}
	return p
}

// Sum adds byte counts, saturating at math.MaxInt64.
func Sum(bytes ...int64) int64 {
	var s int64
	for _, b := range bytes {
		if b < 0 || s > math.MaxInt64-b {
			return math.MaxInt64
		}
		s += b
	}
	return s
}

// Format writes a byte count for people: "275 GB", "16.0 MB".
func Format(n int64) string {
	if n == math.MaxInt64 {
		return "more than 9 EB"
	}
	f := float64(n)
	for _, u := range []string{"B", "KB", "MB", "GB", "TB", "PB"} {
		if f < 1024 || u == "PB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			if f < 10 {
				return fmt.Sprintf("%.1f %s", f, u)
			}
			return fmt.Sprintf("%.0f %s", f, u)
		}
		f /= 1024
	}
	return ""
}

// Default is three quarters of physical().
func Default() int64 { return physical() / 4 * 3 }

// physical is the memory the process may use, read once (every check asks
// for it, and reading /proc costs a millisecond).
var physical = sync.OnceValue(readPhysical)

// readPhysical reads the memory the process may use: MemTotal, or the
// cgroup's limit when lower; 8 GiB where neither can be read.
func readPhysical() int64 {
	total := int64(8 << 30)
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 2 && fs[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(fs[1], 10, 64); err == nil && kb > 0 {
					total = kb << 10
				}
				break
			}
		}
		f.Close()
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(p); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && n < total {
				total = n
			}
		}
	}
	return total
}
