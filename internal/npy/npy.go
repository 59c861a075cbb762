// Package npy reads and writes NumPy .npy arrays and .npz archives.
//
// Only what the project exchanges with PyTorch/NumPy is supported: little-endian
// float32, float64, float16, int64, int32, uint8 and bool arrays in C order. Every
// read value is converted to float32. Headers are checked against the data size
// before anything is allocated, so a hostile file cannot make us allocate more
// than it holds.
package npy

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Array is a dense float32 array in C (row-major) order.
type Array struct {
	Shape []int
	Data  []float32
}

// Size returns the number of elements the shape describes.
func (a *Array) Size() int { return shapeSize(a.Shape) }

func shapeSize(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

var magic = []byte("\x93NUMPY")

// maxElems bounds the element count of any array we agree to read (16 Gi elements).
const maxElems = 1 << 34

var (
	reDescr   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	reFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	reShape   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// Read parses one .npy array from r. size is the number of bytes available in
// r (or -1 if unknown); when known it is checked against the header before
// allocating.
func Read(r io.Reader, size int64) (*Array, error) {
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("npy: short header: %w", err)
	}
	if !bytes.Equal(pre[:6], magic) {
		return nil, errors.New("npy: not a .npy file (bad magic)")
	}
	major := pre[6]
	var hlen int
	consumed := int64(10)
	switch major {
	case 1:
		hlen = int(binary.LittleEndian.Uint16(pre[8:10]))
	case 2, 3:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return nil, fmt.Errorf("npy: short header: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint32(append(pre[8:10:10], ext[:]...)))
		consumed += 2
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d", major)
	}
	if hlen > 1<<20 || (size >= 0 && int64(hlen)+consumed > size) {
		return nil, fmt.Errorf("npy: header length %d is larger than the file", hlen)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("npy: short header: %w", err)
	}
	consumed += int64(hlen)
	h := string(hdr)
	m := reDescr.FindStringSubmatch(h)
	if m == nil {
		return nil, errors.New("npy: header has no descr")
	}
	descr := m[1]
	if f := reFortran.FindStringSubmatch(h); f == nil || f[1] != "False" {
		return nil, errors.New("npy: only C-order arrays are supported (fortran_order must be False)")
	}
	s := reShape.FindStringSubmatch(h)
	if s == nil {
		return nil, errors.New("npy: header has no shape")
	}
	var shape []int
	n := int64(1)
	for _, part := range strings.Split(s[1], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := strconv.Atoi(part)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("npy: bad shape entry %q", part)
		}
		n *= int64(d)
		if n > maxElems {
			return nil, fmt.Errorf("npy: shape (%s) is too large", s[1])
		}
		shape = append(shape, d)
	}
	var width int
	switch descr {
	case "<f4", "<i4":
		width = 4
	case "<f8", "<i8":
		width = 8
	case "<f2":
		width = 2
	case "|u1", "|b1", "|i1":
		width = 1
	default:
		return nil, fmt.Errorf("npy: unsupported dtype %q (want little-endian float/int/uint8/bool)", descr)
	}
	if size >= 0 && n*int64(width) > size-consumed {
		return nil, fmt.Errorf("npy: shape %v needs %d bytes but the file holds %d", shape, n*int64(width), size-consumed)
	}
	raw := make([]byte, n*int64(width))
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("npy: data truncated: shape %v needs %d bytes: %w", shape, len(raw), err)
	}
	out := make([]float32, n)
	for i := range out {
		switch descr {
		case "<f4":
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		case "<i4":
			out[i] = float32(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		case "<f8":
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		case "<i8":
			out[i] = float32(int64(binary.LittleEndian.Uint64(raw[8*i:])))
		case "<f2":
			out[i] = Float16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		case "|u1", "|b1":
			out[i] = float32(raw[i])
		case "|i1":
			out[i] = float32(int8(raw[i]))
		}
	}
	return &Array{Shape: shape, Data: out}, nil
}

// Float16ToFloat32 converts an IEEE 754 half-precision value.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		f := float32(mant) / 1024 / 16384
		if sign != 0 {
			return -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// ReadFile reads a .npy file.
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory, want a .npy file", path)
	}
	a, err := Read(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Write writes a float32 array as a version-1 .npy.
func Write(w io.Writer, shape []int, data []float32) error {
	if shapeSize(shape) != len(data) {
		return fmt.Errorf("npy: shape %v does not match %d values", shape, len(data))
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	st := strings.Join(dims, ", ")
	if len(shape) == 1 {
		st += ","
	}
	h := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", st)
	// Pad so that the data starts on a 64-byte boundary, newline-terminated.
	total := 10 + len(h) + 1
	pad := (64 - total%64) % 64
	h += strings.Repeat(" ", pad) + "\n"
	var pre [10]byte
	copy(pre[:], magic)
	pre[6], pre[7] = 1, 0
	binary.LittleEndian.PutUint16(pre[8:], uint16(len(h)))
	if _, err := w.Write(pre[:]); err != nil {
		return err
	}
	if _, err := io.WriteString(w, h); err != nil {
		return err
	}
	buf := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	_, err := w.Write(buf)
	return err
}

// WriteFile writes a float32 array to path.
func WriteFile(path string, shape []int, data []float32) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Write(f, shape, data); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// ReadNPZ reads every array of an .npz archive (as written by numpy.savez), keyed
// by name without the .npy suffix.
func ReadNPZ(path string) (map[string]*Array, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("%s: not an .npz archive: %w", path, err)
	}
	defer zr.Close()
	out := make(map[string]*Array, len(zr.File))
	for _, f := range zr.File {
		name := strings.TrimSuffix(f.Name, ".npy")
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, f.Name, err)
		}
		a, err := Read(rc, int64(f.UncompressedSize64))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, f.Name, err)
		}
		out[name] = a
	}
	return out, nil
}
