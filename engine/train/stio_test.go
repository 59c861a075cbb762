package train

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A training-state file is read by engine/ckpt: a small file whose shape
// overflows (it once made geca train --resume panic) is a clean error
// naming the file.
func TestResumeRefusesOverflowingShapes(t *testing.T) {
	dir := t.TempDir()
	for i, hdr := range []string{
		`{"model.w":{"dtype":"F32","shape":[4611686018427387905,4],"data_offsets":[0,16]}}`,
		`{"model.w":{"dtype":"F32","shape":[-1,-4],"data_offsets":[0,16]}}`,
		`{"model.w":{"dtype":"F16","shape":[1073741824],"data_offsets":[0,16]}}`,
		`{"model.w":{"dtype":"F32","shape":[4],"data_offsets":[0,99999999999]}}`,
	} {
		t.Run(hdr, func(t *testing.T) {
			b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
			b = append(append(b, hdr...), make([]byte, 16)...)
			p := filepath.Join(dir, "x.train.safetensors")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, _, err := Resume(p, toyData(8, 8, 8), Changes{}, nil); err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("header %d: err = %v, want an error naming the file", i, err)
			}
			if _, _, err := LoadModelFile(p); err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("header %d: LoadModelFile err = %v", i, err)
			}
		})
	}
}
