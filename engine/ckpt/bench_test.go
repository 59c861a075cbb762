package ckpt

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The GeCA-S checkpoint (13.3 M parameters in ema and model, plus AdamW
// state: about 213 MB) is written by make_fixtures.py --geca-s at benchmark
// time, once per run, and never committed.
var (
	geCASOnce sync.Once
	geCASPath string
	geCASErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if geCASPath != "" && geCASErr == nil {
		os.RemoveAll(filepath.Dir(geCASPath))
	}
	os.Exit(code)
}

func geCASCheckpoint(b *testing.B) string {
	geCASOnce.Do(func() {
		dir, err := os.MkdirTemp("", "geca-bench-")
		if err != nil {
			geCASErr = err
			return
		}
		geCASPath = filepath.Join(dir, "best_ckpt.pt")
		out, err := exec.Command("/usr/bin/python3", "testdata/make_fixtures.py", "--geca-s", geCASPath).CombinedOutput()
		if err != nil {
			geCASErr = err
			geCASPath = string(out)
		}
	})
	if geCASErr != nil {
		b.Skipf("cannot write the GeCA-S checkpoint with python3 + torch: %v\n%s", geCASErr, geCASPath)
	}
	return geCASPath
}

// BenchmarkLoadGeCAS loads the ema weights of a GeCA-S checkpoint (the
// optimizer state and the model copy are never read).
func BenchmarkLoadGeCAS(b *testing.B) {
	p := geCASCheckpoint(b)
	st, _ := os.Stat(p)
	b.SetBytes(st.Size())
	b.ResetTimer()
	for range b.N {
		c, err := Load(p, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if c.ParamCount() != 13312584 {
			b.Fatalf("%d parameters", c.ParamCount())
		}
	}
}

// BenchmarkLoadModelGeCAS adds the config derivation and engine.NewModel.
func BenchmarkLoadModelGeCAS(b *testing.B) {
	p := geCASCheckpoint(b)
	b.ResetTimer()
	for range b.N {
		m, _, err := LoadModel(p, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if m.Cfg.Name != "GeCA-S" {
			b.Fatal(m.Cfg.Name)
		}
	}
}

// BenchmarkLoadSafetensorsGeCAS loads the same ema weights after conversion.
func BenchmarkLoadSafetensorsGeCAS(b *testing.B) {
	p := geCASCheckpoint(b)
	c, err := Load(p, Options{})
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(b.TempDir(), "geca-s.safetensors")
	if err := SaveSafetensors(out, c.Tensors, c.Names, nil); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(out)
	b.SetBytes(st.Size())
	b.ResetTimer()
	for range b.N {
		if _, _, _, err := LoadSafetensors(out); err != nil {
			b.Fatal(err)
		}
	}
}
