package ckpt

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"unsafe"
)

// nativeLittle reports whether this machine stores numbers little-endian, as
// every checkpoint format we read does; then float32 data is read straight
// into the destination slice with no conversion pass.
var nativeLittle = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// chunkElems bounds the scratch buffer used for converting reads.
const chunkElems = 1 << 16

func f32Bytes(d []float32) []byte {
	if len(d) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&d[0])), 4*len(d))
}

// readF32 fills dst with little-endian float32 values read at off.
func readF32(r io.ReaderAt, off int64, dst []float32) error {
	if nativeLittle {
		if _, err := r.ReadAt(f32Bytes(dst), off); err != nil {
			return fmt.Errorf("reading %d float32 values at byte %d: %w", len(dst), off, err)
		}
		return nil
	}
	buf := make([]byte, 4*min(len(dst), chunkElems))
	for i := 0; i < len(dst); {
		n := min(len(dst)-i, chunkElems)
		if _, err := r.ReadAt(buf[:4*n], off+4*int64(i)); err != nil {
			return fmt.Errorf("reading %d float32 values at byte %d: %w", len(dst), off, err)
		}
		for j := 0; j < n; j++ {
			dst[i+j] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*j:]))
		}
		i += n
	}
	return nil
}

// readHalf fills dst with 16-bit values read at off, converted by conv.
func readHalf(r io.ReaderAt, off int64, dst []float32, conv func(uint16) float32) error {
	buf := make([]byte, 2*min(len(dst), chunkElems))
	for i := 0; i < len(dst); {
		n := min(len(dst)-i, chunkElems)
		if _, err := r.ReadAt(buf[:2*n], off+2*int64(i)); err != nil {
			return fmt.Errorf("reading %d 16-bit values at byte %d: %w", len(dst), off, err)
		}
		for j := 0; j < n; j++ {
			dst[i+j] = conv(binary.LittleEndian.Uint16(buf[2*j:]))
		}
		i += n
	}
	return nil
}

// writeF32 writes d as little-endian float32.
func writeF32(w io.Writer, d []float32) error {
	if nativeLittle {
		_, err := w.Write(f32Bytes(d))
		return err
	}
	buf := make([]byte, 4*min(len(d), chunkElems))
	for i := 0; i < len(d); {
		n := min(len(d)-i, chunkElems)
		for j := 0; j < n; j++ {
			binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(d[i+j]))
		}
		if _, err := w.Write(buf[:4*n]); err != nil {
			return err
		}
		i += n
	}
	return nil
}

// readF64 fills dst with little-endian float64 values read at off, rounded
// to float32.
func readF64(r io.ReaderAt, off int64, dst []float32) error {
	buf := make([]byte, 8*min(len(dst), chunkElems))
	for i := 0; i < len(dst); {
		n := min(len(dst)-i, chunkElems)
		if _, err := r.ReadAt(buf[:8*n], off+8*int64(i)); err != nil {
			return fmt.Errorf("reading %d float64 values at byte %d: %w", len(dst), off, err)
		}
		for j := 0; j < n; j++ {
			dst[i+j] = float32(math.Float64frombits(binary.LittleEndian.Uint64(buf[8*j:])))
		}
		i += n
	}
	return nil
}
