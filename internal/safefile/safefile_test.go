package safefile

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWriteReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.txt")
	if err := WriteBytes(p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm()&0o600 != 0o600 {
		t.Errorf("mode %v, want at least rw for the owner", fi.Mode())
	}
	// A failing writer leaves the old content and no temporary file.
	err := Write(p, func(w io.Writer) error {
		w.Write([]byte("partial new content"))
		return errors.New("boom")
	})
	if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want boom naming the file", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Fatalf("content %q after a failed write, want old", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d entries left in the folder, want 1", len(ents))
	}
	if err := WriteBytes(p, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Fatalf("content %q, want new", b)
	}
	if err := WriteBytes(dir, []byte("x")); err == nil {
		t.Fatal("writing over a folder succeeded")
	}
}

func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.bin")
	os.WriteFile(in, []byte("x"), 0o644)
	link := filepath.Join(dir, "link.bin")
	os.Symlink(in, link)
	hard := filepath.Join(dir, "hard.bin")
	os.Link(in, hard)
	for _, c := range []struct {
		out, want string
	}{
		{in, "is the input"},
		{link, "is the input"},
		{hard, "is the input"},
		{dir, "is a folder"},
		{filepath.Join(dir, "nope", "x.png"), "does not exist"},
		{filepath.Join(in, "x.png"), "not a folder"},
		{"", "empty path"},
		{filepath.Join(dir, "fresh.png"), ""},
	} {
		err := CheckOutput("--out", c.out, in)
		if c.want == "" {
			if err != nil {
				t.Errorf("CheckOutput(%q) = %v, want nil", c.out, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--out") {
			t.Errorf("CheckOutput(%q) = %v, want %q naming --out", c.out, err, c.want)
		}
	}
	before, _ := os.ReadDir(dir)
	if os.Getuid() != 0 {
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		if err := CheckOutput("--out", filepath.Join(ro, "x"), in); err == nil {
			t.Error("CheckOutput in a read-only folder = nil")
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != len(before)+1 && len(ents) != len(before) {
		t.Errorf("%d entries after the checks, want %d (no probe left)", len(ents), len(before))
	}
}

// A process killed with SIGKILL at a random point of a long write leaves
// either the old file or the complete new one.
func TestKillDuringWrite(t *testing.T) {
	if os.Getenv("SAFEFILE_CHILD") != "" {
		p := os.Getenv("SAFEFILE_CHILD")
		big := strings.Repeat("n", 1<<20)
		Write(p, func(w io.Writer) error {
			for i := 0; i < 64; i++ {
				io.WriteString(w, big)
			}
			return nil
		})
		os.Exit(0)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	old := strings.Repeat("o", 1000)
	os.WriteFile(p, []byte(old), 0o644)
	for i := 0; i < 8; i++ {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestKillDuringWrite$")
		cmd.Env = append(os.Environ(), "SAFEFILE_CHILD="+p)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i*7) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != old && len(b) != 64<<20 {
			t.Fatalf("kill after %d ms left %d bytes: neither the old file nor the new one", i*7, len(b))
		}
		os.WriteFile(p, []byte(old), 0o644)
	}
}
