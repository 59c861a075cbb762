package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"geca/engine"
	"geca/engine/ckpt"
	"geca/internal/npy"
)

// The real geca process, killed with SIGKILL at points spread over its run,
// leaves every output either as it was or complete: never a broken file.
// One command per kind of file geca writes: .npy and PNG (decode), GIF and
// .npy (sample), safetensors (convert).
func TestKillDuringWrites(t *testing.T) {
	dir := t.TempDir()

	// decode --approx of a batch large enough to take a while to write.
	lat := filepath.Join(dir, "lat.npy")
	v := make([]float32, 8*4*48*48)
	for i := range v {
		v[i] = float32(i%97)/50 - 1
	}
	if err := npy.WriteFile(lat, []int{8, 4, 48, 48}, v); err != nil {
		t.Fatal(err)
	}
	decOut, decNpy := filepath.Join(dir, "dec.png"), filepath.Join(dir, "dec.npy")

	// sample of a small model, with a GIF and the latents.
	ck := writeTinyCheckpoint(t, dir, true)
	smpGif, smpNpy := filepath.Join(dir, "s.gif"), filepath.Join(dir, "s.npy")

	// convert of a model of a few tens of MB.
	cfg, err := engine.Preset("GeCA-XS", 10)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MLPDim = 4096
	m, err := engine.NewRandomModel(cfg, 1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(cfg)
	big := filepath.Join(dir, "big.safetensors")
	if err := ckpt.SaveSafetensors(big, m.Tensors(), m.Names(), map[string]string{ckpt.MetaConfig: string(js)}); err != nil {
		t.Fatal(err)
	}
	convOut := filepath.Join(dir, "conv.safetensors")

	for _, c := range []struct {
		name string
		args []string
		outs []string
	}{
		{"decode", []string{"decode", "--approx", "--latent", lat, "--out", decOut, "--npy", decNpy, "--quiet"}, []string{decOut, decNpy}},
		{"sample", []string{"sample", "--ckpt", ck, "--n", "2", "--steps", "6", "--gif", smpGif, "--npy", smpNpy, "--quiet"}, []string{smpGif, smpNpy}},
		{"convert", []string{"convert", big, convOut}, []string{convOut}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The complete outputs of an uninterrupted run, and its length.
			start := time.Now()
			if out, err := gecaProcess(c.args...).CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			took := time.Since(start)
			want := map[string][]byte{}
			for _, p := range c.outs {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				want[p] = b
			}
			old := []byte("the user's previous file")
			const kills = 4
			for k := range kills {
				for _, p := range c.outs {
					if err := os.WriteFile(p, old, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				cmd := gecaProcess(c.args...)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				at := took * time.Duration(k+1) / kills
				time.Sleep(at)
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				for _, p := range c.outs {
					got, err := os.ReadFile(p)
					if err != nil {
						t.Fatalf("killed after %v: %s: %v", at, filepath.Base(p), err)
					}
					if !bytes.Equal(got, old) && !bytes.Equal(got, want[p]) {
						t.Fatalf("killed after %v: %s holds %d bytes, neither the old file nor the new one", at, filepath.Base(p), len(got))
					}
				}
			}
			// What a killed run may leave beside the outputs are its own
			// hidden temporary files, never a visible half-written file.
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.Contains(e.Name(), ".tmp") && !strings.HasPrefix(e.Name(), ".") {
					t.Errorf("visible temporary file %s", e.Name())
				}
			}
		})
	}
}
