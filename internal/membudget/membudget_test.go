package membudget

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for s, want := range map[string]int64{"8G": 8 << 30, "512M": 512 << 20, "1.5GiB": 3 << 29, "2048 MB": 2 << 30, "1073741824": 1 << 30} {
		if got, err := Parse(s); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	if got, err := Parse("50%"); err != nil || got <= 0 || got > physical() {
		t.Errorf("Parse(50%%) = %d, %v", got, err)
	}
	for _, s := range []string{"", "-1G", "0", "x", "NaN", "1e30G", "101%", "12", "0%"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
}

func TestCheck(t *testing.T) {
	defer Set(0)
	Set(1 << 30)
	if err := Check("x", 1<<29); err != nil {
		t.Fatal(err)
	}
	err := Check("state of a 4096x4096 grid", Bytes(4096, 4096, 4, 1024))
	var me *Error
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "4096x4096") || !strings.Contains(err.Error(), "64 GB") ||
		!strings.Contains(err.Error(), "1.0 GB") || !strings.Contains(err.Error(), EnvVar) {
		t.Fatalf("err = %v", err)
	}
	if Bytes(1<<40, 1<<40) != math.MaxInt64 || Bytes(3, -1) != math.MaxInt64 || Bytes(5, 0, 1<<62) != 0 {
		t.Error("Bytes does not saturate")
	}
	if Sum(math.MaxInt64-1, 2) != math.MaxInt64 || Check("huge", Bytes(1<<40, 1<<40)) == nil {
		t.Error("Sum or Check of a saturated count")
	}
	t.Setenv(EnvVar, "2G")
	if err := SetFrom("--max-memory", ""); err != nil || Limit() != 2<<30 {
		t.Errorf("from env: %v, limit %d", err, Limit())
	}
	if err := SetFrom("--max-memory", "3G"); err != nil || Limit() != 3<<30 {
		t.Errorf("flag over env: %v, limit %d", err, Limit())
	}
	if err := SetFrom("--max-memory", "lots"); err == nil || !strings.Contains(err.Error(), "--max-memory") {
		t.Errorf("bad flag: %v", err)
	}
	if Default() <= 0 {
		t.Error("no default")
	}
}
