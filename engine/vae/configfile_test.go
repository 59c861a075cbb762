//go:build unix

package vae

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// copyVAE copies the small test VAE to a new folder, with config.json
// replaced by what setup makes.
func copyVAE(t *testing.T, setup func(cfg string)) string {
	t.Helper()
	dir := t.TempDir()
	w, err := os.ReadFile(filepath.Join("testdata", "mid", WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, WeightsFile), w, 0o644)
	setup(filepath.Join(dir, "config.json"))
	return dir
}

// config.json is read only when it is a regular file of sane size: a link
// to /dev/zero (once read until memory ran out), a named pipe (once waited
// on forever) and a huge file are refused at once.
func TestConfigFileChecked(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "mid", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		setup func(string)
		want  string
	}{
		{"link to /dev/zero", func(p string) { os.Symlink("/dev/zero", p) }, "device"},
		{"named pipe", func(p string) { syscall.Mkfifo(p, 0o644) }, "named pipe"},
		{"huge", func(p string) { os.WriteFile(p, append(good, make([]byte, 2<<20)...), 0o644) }, "more than"},
		{"tiny scaling", func(p string) {
			os.WriteFile(p, []byte(strings.Replace(string(good), "0.13025", "1e-300", 1)), 0o644)
		}, "scaling_factor 1e-300 out of range"},
		{"NaN shift", func(p string) {
			os.WriteFile(p, []byte(strings.Replace(string(good), "0.0609", "1e999", 1)), 0o644)
		}, "config.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyVAE(t, c.setup)
			done := make(chan error, 1)
			go func() { _, err := LoadDecoder(dir); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: %v, want %q", c.name, err, c.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: LoadDecoder still running after 10 s", c.name)
			}
		})
	}
	if _, err := LoadDecoder(copyVAE(t, func(p string) { os.WriteFile(p, good, 0o644) })); err != nil {
		t.Fatalf("the good config: %v", err)
	}
}
