//go:build unix

package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A named pipe, a folder or a device where a file is expected is refused at
// once; a regular file is read within its limit.
func TestOpenRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "x.png")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ReadFile(fifo, 1<<20)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "named pipe") || !strings.Contains(err.Error(), fifo) {
			t.Errorf("ReadFile(fifo) = %v, want a named-pipe error naming the path", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFile of a named pipe blocked")
	}
	for path, want := range map[string]string{dir: "is a folder", "/dev/zero": "device"} {
		if _, _, err := OpenRegular(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenRegular(%s) = %v, want %q", path, err, want)
		}
	}
	// A symbolic link to a device is followed and refused too.
	link := filepath.Join(dir, "config.json")
	os.Symlink("/dev/zero", link)
	if _, err := ReadFile(link, 1<<20); err == nil || !strings.Contains(err.Error(), "device") {
		t.Errorf("ReadFile(link to /dev/zero) = %v", err)
	}
	p := filepath.Join(dir, "a.json")
	os.WriteFile(p, []byte("0123456789"), 0o644)
	if b, err := ReadFile(p, 10); err != nil || string(b) != "0123456789" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	if _, err := ReadFile(p, 9); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadFile over the limit = %v", err)
	}
	if !IsRegular(p) || IsRegular(fifo) || IsRegular(dir) {
		t.Error("IsRegular")
	}
}
