//go:build unix

package data

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"geca/internal/membudget"
)

// cheap runs f and fails unless it ends within limit having allocated at
// most maxAlloc bytes; it returns f's error.
func cheap(t *testing.T, limit time.Duration, maxAlloc uint64, f func() error) error {
	t.Helper()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	done := make(chan error, 1)
	go func() { done <- f() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(limit):
		t.Fatalf("still running after %v", limit)
	}
	runtime.ReadMemStats(&b)
	if d := b.TotalAlloc - a.TotalAlloc; d > maxAlloc {
		t.Errorf("allocated %d bytes, at most %d expected", d, maxAlloc)
	}
	return err
}

func writeGz(t *testing.T, path string, b []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// IDX sizes are checked before anything is inflated: against what the
// file can hold (deflate inflates a byte to about 1032), against each other
// (images and labels), and against the memory limit. An IDX gzip bomb once
// took 5.3 GB and a minute before its sizes were checked.
func TestIDXBombs(t *testing.T) {
	dir := t.TempDir()
	// A header declaring 1 GB in a file of a few dozen bytes.
	writeGz(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), idxBytes([]int{10000, 1000, 100}, make([]byte, 64)))
	writeGz(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), idxBytes([]int{10000}, make([]byte, 10000)))
	err := cheap(t, 5*time.Second, 4<<20, func() error { _, err := LoadFashionMNIST(dir, "train"); return err })
	if err == nil || !strings.Contains(err.Error(), "more than the") || !strings.Contains(err.Error(), "train-images") {
		t.Fatalf("a header beyond what the file can hold: %v", err)
	}

	// 20 MB of real, well-compressed data: images and labels disagree,
	// which is seen before either is inflated.
	big := idxBytes([]int{1000, 200, 100}, make([]byte, 20<<20))
	writeGz(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), big)
	writeGz(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), idxBytes([]int{7}, make([]byte, 7)))
	err = cheap(t, 5*time.Second, 8<<20, func() error { _, err := LoadFashionMNIST(dir, "train"); return err })
	if err == nil || !strings.Contains(err.Error(), "want N×H×W images and N labels") {
		t.Fatalf("images and labels that disagree: %v", err)
	}

	// They agree, but pass the memory limit.
	writeGz(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), idxBytes([]int{1000}, make([]byte, 1000)))
	defer membudget.Set(0)
	membudget.Set(8 << 20)
	var me *membudget.Error
	err = cheap(t, 5*time.Second, 8<<20, func() error { _, err := LoadFashionMNIST(dir, "train"); return err })
	if !errors.As(err, &me) {
		t.Fatalf("a 20 MB set under an 8 MB limit: %v", err)
	}
}

// A named pipe called x.png among the images is refused at once, naming it
// (geca encode once hung on it, deaf to Ctrl-C); so is a device.
func TestImageFolderSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	writeClassImages(t, dir, []string{"cat"}, 2, 8)
	fifo := filepath.Join(dir, "cat", "x.png")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	out := filepath.Join(t.TempDir(), "latents")
	err := cheap(t, 5*time.Second, 4<<20, func() error {
		_, err := EncodeFolderTo(context.Background(), dir, 8, &poolEncoder{}, EncodeOptions{}, LatentFolder{Dir: out})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "named pipe") || !strings.Contains(err.Error(), "x.png") {
		t.Fatalf("EncodeFolderTo with a FIFO: %v", err)
	}
	if _, err := LoadFolder(dir, 8, 1); err == nil || !strings.Contains(err.Error(), "named pipe") {
		t.Fatalf("LoadFolder with a FIFO: %v", err)
	}
	os.Remove(fifo)
	os.Symlink("/dev/zero", fifo)
	if _, err := LoadFolder(dir, 8, 1); err == nil || !strings.Contains(err.Error(), "device") {
		t.Fatalf("LoadFolder with a link to /dev/zero: %v", err)
	}
}

// A folder of images whose decoded size passes the memory limit is refused
// before any image is read.
func TestLoadFolderBudget(t *testing.T) {
	dir := t.TempDir()
	writeClassImages(t, dir, []string{"a", "b"}, 3, 8)
	defer membudget.Set(0)
	membudget.Set(1 << 20)
	var me *membudget.Error
	if _, err := LoadFolder(dir, 1024, 3); !errors.As(err, &me) {
		t.Fatalf("6 images of 1024x1024x3 under 1 MB: %v", err)
	}
}
