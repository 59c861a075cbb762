package ckpt

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"geca/internal/membudget"
)

// pickler writes protocol-2 pickle opcodes, for crafting hostile files.
type pickler struct{ b []byte }

func (p *pickler) op(s string) *pickler { p.b = append(p.b, s...); return p }

func (p *pickler) str(s string) *pickler {
	p.b = append(p.b, 'X')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(p.b, s...)
	return p
}

func (p *pickler) int(v int32) *pickler {
	p.b = append(p.b, 'J')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(v))
	return p
}

func (p *pickler) put(i uint32) *pickler {
	p.b = append(p.b, 'r')
	p.b = binary.LittleEndian.AppendUint32(p.b, i)
	return p
}

func (p *pickler) get(i uint32) *pickler {
	p.b = append(p.b, 'j')
	p.b = binary.LittleEndian.AppendUint32(p.b, i)
	return p
}

// tensor is a float32 tensor of n elements viewing all of storage key.
func (p *pickler) tensor(key string, n int32) *pickler {
	p.op("ctorch._utils\n_rebuild_tensor_v2\n((").str("storage").op("ctorch\nFloatStorage\n").str(key).str("cpu").int(n).op("tQ")
	p.int(0).int(n).op("\x85").int(1).op("\x85\x89ccollections\nOrderedDict\n)RtR")
	return p
}

// emaOf writes "ema": {"w": a 2-element tensor of storage 0}.
func (p *pickler) ema() *pickler {
	return p.str("ema").op("ccollections\nOrderedDict\n)R(").str("w").tensor("0", 2).op("u")
}

// bounded runs load and fails unless it ends within limit and allocates at
// most maxAlloc bytes; it returns load's error.
func bounded(t *testing.T, limit time.Duration, maxAlloc uint64, load func() error) error {
	t.Helper()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- load() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(limit):
		t.Fatalf("still running after %v", limit)
	}
	runtime.ReadMemStats(&b)
	if d := b.TotalAlloc - a.TotalAlloc; d > maxAlloc {
		t.Errorf("allocated %d bytes (at most %d expected) in %v", d, maxAlloc, time.Since(start))
	}
	return err
}

// N references to one optimizer-state dict of M entries cost N+M opcodes;
// summarising them must cost about that too (it once walked N×M: 30k×30k
// took a minute, a 24 MB file days).
func TestSharedOptimizerStateIsCheap(t *testing.T) {
	const n, m = 30000, 30000
	p := &pickler{}
	p.op("\x80\x02}(").ema().str("opt").op("}(").str("state").op("}(")
	for i := range n {
		p.int(int32(i))
		if i == 0 {
			p.op("}(")
			for k := range m {
				p.int(int32(k)).int(int32(k))
			}
			p.op("u").put(1)
		} else {
			p.get(1)
		}
	}
	p.op("uuu.")
	path := pickleZip(t, t.TempDir(), p.b, map[string][]byte{"data/0": make([]byte, 8)})
	var c *Checkpoint
	err := bounded(t, 10*time.Second, 256<<20, func() (err error) { c, err = Load(path, Options{}); return })
	if err != nil {
		t.Fatal(err)
	}
	if c.Opt == nil || c.Opt.Params != n || len(c.Tensors) != 1 {
		t.Fatalf("opt %+v, %d tensors", c.Opt, len(c.Tensors))
	}
}

// A key the checkpoint dict names twice is refused: each reading of it
// could be as long as the file, and by reference the file can name it
// as often as it likes.
func TestDuplicateCheckpointKeys(t *testing.T) {
	p := (&pickler{}).op("\x80\x02}(").ema().ema().op("u.")
	path := pickleZip(t, t.TempDir(), p.b, map[string][]byte{"data/0": make([]byte, 8)})
	if _, err := Load(path, Options{}); err == nil || !strings.Contains(err.Error(), `"ema" twice`) {
		t.Fatalf("err = %v", err)
	}
}

// Pickles that pass every other check but would make the unpickler
// allocate without bound are refused by the scan, cheaply: a MARK bomb (280
// bytes allocated per byte of input; 10 MB made 2.9 GB), a flood of
// opcodes, and MARKs opened and closed forever.
func TestPickleBombs(t *testing.T) {
	for _, c := range []struct {
		name, pkl, want string
	}{
		{"MARK bomb", "\x80\x02" + strings.Repeat("(", 10<<20) + ".", "nested MARKs"},
		{"opcode flood", "\x80\x02" + strings.Repeat("N0", 3<<20) + "N.", "opcodes"},
		{"MARK churn", "\x80\x02" + strings.Repeat("(1", 2<<20) + "N.", "would allocate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := pickleZip(t, t.TempDir(), []byte(c.pkl), nil)
			err := bounded(t, 10*time.Second, 64<<20, func() error { _, err := Load(path, Options{}); return err })
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("%s: %v, want %q naming the file", c.name, err, c.want)
			}
		})
	}
}

// Tensors are views: a thousand views of one 1 MB storage are 1 GB once
// read. The weights' memory is checked against the limit before any is
// read.
func TestViewsOfOneStorageBudgeted(t *testing.T) {
	const views, elems = 1000, 1 << 18
	p := (&pickler{}).op("\x80\x02}(").str("ema").op("ccollections\nOrderedDict\n)R(")
	for i := range views {
		p.str("w"+string(rune('a'+i%26))+strings.Repeat("x", i/26)).tensor("0", elems)
	}
	p.op("uu.")
	path := pickleZip(t, t.TempDir(), p.b, map[string][]byte{"data/0": make([]byte, 4*elems)})
	defer membudget.Set(0)
	membudget.Set(256 << 20)
	var me *membudget.Error
	err := bounded(t, 10*time.Second, 32<<20, func() error { _, err := Load(path, Options{}); return err })
	if !errors.As(err, &me) || me.Need < views*4*elems || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
}

// A compressed record may not inflate beyond an absolute cap, whatever its
// ratio: 1 MB of deflate data declaring 1 GB passes the ratio check.
func TestDeflateCap(t *testing.T) {
	path := rawRecordZip(t, zip.Deflate, 1<<20, 1<<30, make([]byte, 1<<20))
	err := bounded(t, 10*time.Second, 8<<20, func() error { _, err := Load(path, Options{}); return err })
	if err == nil || !strings.Contains(err.Error(), "inflates to 1073741824 bytes") {
		t.Fatalf("err = %v", err)
	}
}
