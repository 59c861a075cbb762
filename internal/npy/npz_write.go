package npy

import (
	"archive/zip"
	"fmt"
	"io"
)

// NPZWriter streams one uint8 array into an .npz archive as numpy.savez
// writes it (an uncompressed zip entry NAME.npy), so that arrays larger than
// memory can be written a piece at a time: the reference ADM/guided-diffusion
// evaluator reads its samples this way, as arr_0 of shape (N, H, W, 3).
type NPZWriter struct {
	zw   *zip.Writer
	w    io.Writer
	left int64 // values still to write
}

// NewNPZUint8 starts an archive on w with one array called name of the
// given shape; Write the values in C order, then Close.
func NewNPZUint8(w io.Writer, name string, shape []int) (*NPZWriter, error) {
	zw := zip.NewWriter(w)
	ew, err := zw.CreateHeader(&zip.FileHeader{Name: name + ".npy", Method: zip.Store})
	if err != nil {
		return nil, err
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	if err := writeHeader(ew, "|u1", shape, n); err != nil {
		return nil, err
	}
	return &NPZWriter{zw: zw, w: ew, left: int64(n)}, nil
}

// Write appends values.
func (z *NPZWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > z.left {
		return 0, fmt.Errorf("npz: %d more values than the shape holds", int64(len(p))-z.left)
	}
	n, err := z.w.Write(p)
	z.left -= int64(n)
	return n, err
}

// Close finishes the archive; it fails if values are missing.
func (z *NPZWriter) Close() error {
	if z.left != 0 {
		return fmt.Errorf("npz: %d values missing", z.left)
	}
	return z.zw.Close()
}
