package train

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// stTensor is one float32 tensor of a safetensors file.
type stTensor struct {
	Shape []int
	Data  []float32
}

// writeSafetensors writes F32 tensors in the given order with string metadata
// (atomically: a temporary file renamed into place, so a crash mid-write never
// leaves a half-written checkpoint).
func writeSafetensors(path string, names []string, ts map[string]stTensor, meta map[string]string) error {
	type entry struct {
		Dtype   string   `json:"dtype"`
		Shape   []int    `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	hdr := map[string]any{}
	if len(meta) > 0 {
		hdr["__metadata__"] = meta
	}
	var off int64
	for _, n := range names {
		t := ts[n]
		end := off + 4*int64(len(t.Data))
		hdr[n] = entry{"F32", t.Shape, [2]int64{off, end}}
		off = end
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ckpt-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	binary.Write(w, binary.LittleEndian, uint64(len(hb)))
	w.Write(hb)
	buf := make([]byte, 4)
	for _, n := range names {
		for _, v := range ts[n].Data {
			binary.LittleEndian.PutUint32(buf, math.Float32bits(v))
			w.Write(buf)
		}
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %v", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readSafetensors reads a safetensors file of F32 (and F16) tensors.
func readSafetensors(path string) (map[string]stTensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	var hl uint64
	if err := binary.Read(f, binary.LittleEndian, &hl); err != nil {
		return nil, nil, fmt.Errorf("%s: not a safetensors file: %v", path, err)
	}
	if hl > uint64(st.Size())-8 || hl > 100<<20 {
		return nil, nil, fmt.Errorf("%s: header length %d exceeds the file", path, hl)
	}
	hb := make([]byte, hl)
	if _, err := io.ReadFull(f, hb); err != nil {
		return nil, nil, fmt.Errorf("%s: %v", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hb, &raw); err != nil {
		return nil, nil, fmt.Errorf("%s: bad header: %v", path, err)
	}
	dataLen := st.Size() - 8 - int64(hl)
	data := make([]byte, dataLen)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, fmt.Errorf("%s: %v", path, err)
	}
	meta := map[string]string{}
	out := map[string]stTensor{}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "__metadata__" {
			if err := json.Unmarshal(raw[k], &meta); err != nil {
				return nil, nil, fmt.Errorf("%s: bad metadata: %v", path, err)
			}
			continue
		}
		var e struct {
			Dtype   string   `json:"dtype"`
			Shape   []int    `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw[k], &e); err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %q: %v", path, k, err)
		}
		n := int64(1)
		for _, s := range e.Shape {
			if s < 0 || s > 1<<30 {
				return nil, nil, fmt.Errorf("%s: tensor %q has shape %v", path, k, e.Shape)
			}
			n *= int64(s)
		}
		size := map[string]int64{"F32": 4, "F16": 2}[e.Dtype]
		if size == 0 {
			return nil, nil, fmt.Errorf("%s: tensor %q has dtype %s (F32 or F16 expected)", path, k, e.Dtype)
		}
		if e.Offsets[0] < 0 || e.Offsets[1] > dataLen || e.Offsets[1]-e.Offsets[0] != n*size {
			return nil, nil, fmt.Errorf("%s: tensor %q has offsets %v for %d values", path, k, e.Offsets, n)
		}
		b := data[e.Offsets[0]:e.Offsets[1]]
		v := make([]float32, n)
		for i := range v {
			if size == 4 {
				v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			} else {
				v[i] = f16to32(binary.LittleEndian.Uint16(b[2*i:]))
			}
		}
		out[k] = stTensor{Shape: e.Shape, Data: v}
	}
	return out, meta, nil
}

func f16to32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0:
		return math.Float32frombits(sign) + float32(mant)*float32(math.Ldexp(1, -24))*(1-2*float32(h>>15))
	case exp == 31:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | uint32(exp-15+127)<<23 | mant<<13)
}
