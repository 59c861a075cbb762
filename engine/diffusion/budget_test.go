package diffusion

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"geca/internal/membudget"
)

// A process length a peer or a flag chooses is refused before its tables
// are built: 2^31-1 steps once made a worker build 16 GB of tables.
func TestStepsBounded(t *testing.T) {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	for _, steps := range []int{1<<31 - 1, MaxSteps + 1, 0, -5} {
		t.Run(fmt.Sprint(steps), func(t *testing.T) {
			if _, err := New(steps, ""); err == nil || !strings.Contains(err.Error(), "out of range") {
				t.Errorf("New(%d) = %v", steps, err)
			}
			if _, err := New(steps, "ddim10"); err == nil {
				t.Errorf("New(%d, ddim10) succeeded", steps)
			}
		})
	}
	runtime.ReadMemStats(&b)
	if d := b.TotalAlloc - a.TotalAlloc; d > 1<<20 {
		t.Errorf("refusing allocated %d bytes", d)
	}
	defer membudget.Set(0)
	membudget.Set(16 << 20)
	var me *membudget.Error
	if _, err := New(MaxSteps, "10"); !errors.As(err, &me) {
		t.Errorf("New(MaxSteps) under a 16 MB limit = %v", err)
	}
	if s, err := New(1000, "250"); err != nil || s.Len() != 250 {
		t.Errorf("the official process: %v", err)
	}
}
