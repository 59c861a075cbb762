package npy

import (
	"archive/zip"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The archive is what numpy.savez writes and the ADM evaluator reads:
// a stored (uncompressed) entry arr_0.npy holding a '|u1' array in C order.
func TestNPZUint8(t *testing.T) {
	var buf bytes.Buffer
	z, err := NewNPZUint8(&buf, "arr_0", []int{2, 3, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]byte, 36)
	for i := range vals {
		vals[i] = byte(7 * i)
	}
	z.Write(vals[:10])
	z.Write(vals[10:])
	if _, err := z.Write([]byte{1}); err == nil {
		t.Error("writing past the shape succeeded")
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "arr_0.npy" || zr.File[0].Method != zip.Store {
		t.Fatalf("entries %+v", zr.File[0].FileHeader)
	}
	path := filepath.Join(t.TempDir(), "s.npz")
	os.WriteFile(path, buf.Bytes(), 0o644)
	arrs, err := ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	a := arrs["arr_0"]
	if a == nil || len(a.Shape) != 4 || a.Shape[3] != 3 || a.Data[35] != float32(byte(7*35)) {
		t.Fatalf("read back %+v", a)
	}
	rc, _ := zr.File[0].Open()
	head := make([]byte, 128)
	rc.Read(head)
	if !strings.Contains(string(head), "'descr': '|u1'") || !strings.Contains(string(head), "'shape': (2, 3, 2, 3)") {
		t.Errorf("header %q", head)
	}
	// Missing values are an error at Close.
	z, _ = NewNPZUint8(&bytes.Buffer{}, "arr_0", []int{4})
	z.Write([]byte{1, 2})
	if err := z.Close(); err == nil {
		t.Error("closing a short array succeeded")
	}
	// Where numpy is installed, it reads the archive as the evaluator does.
	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import numpy").Run() != nil {
		t.Skip("no python3 with numpy to cross-check")
	}
	out, err := exec.Command(py, "-c", "import numpy as np, sys; a = np.load(sys.argv[1])['arr_0']; print(a.shape, a.dtype, int(a[1, 2, 1, 2]))", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "(2, 3, 2, 3) uint8 "+strconv.Itoa(int(byte(7*35))) {
		t.Errorf("numpy reads %q (%v)", out, err)
	}
}
