package ckpt

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"geca/engine"
)

// tinyConfig is the configuration make_fixtures.py trains its tiny GeCA with.
var tinyConfig = engine.Config{Name: "GeCA-tiny", GridH: 8, GridW: 8, InChannels: 4, HiddenChannels: 4, EmbedDim: 16,
	Heads: 2, MLPDim: 8, NumClasses: 3, M: 12, UpdateRate: 0.5, Latent: true}

func checkTensors(t *testing.T, c *Checkpoint, prefix string) {
	t.Helper()
	exp := loadExpected(t)
	n := 0
	for k, want := range exp {
		name, ok := strings.CutPrefix(k, prefix+"/")
		if !ok {
			continue
		}
		n++
		got, ok := c.Tensors[name]
		if !ok {
			t.Fatalf("%s: tensor %s missing", c.Path, name)
		}
		wantShape := want.Shape
		if !slices.Equal([]int(got.Shape()), wantShape) && !(len(wantShape) == 0 && got.Shape().IsScalar()) {
			t.Fatalf("%s: %s shape %v, want %v", c.Path, name, got.Shape(), wantShape)
		}
		var data []float32
		switch d := got.Data().(type) {
		case []float32:
			data = d
		case float32:
			data = []float32{d}
		}
		sameBits(t, prefix+"/"+name, data, want.Data)
	}
	if n == 0 || n != len(c.Tensors) {
		t.Fatalf("%s: %d tensors loaded, %d expected", c.Path, len(c.Tensors), n)
	}
}

func TestLoadOfficialCheckpoint(t *testing.T) {
	c, err := Load("testdata/tiny.pt", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Format != "pytorch" || c.Weights != "ema" {
		t.Fatalf("format %q weights %q, want pytorch ema", c.Format, c.Weights)
	}
	checkTensors(t, c, "ema")
	if !slices.Equal(c.Names, engine.ParamNames(tinyConfig)) {
		t.Fatalf("names %v, want the official order", c.Names)
	}
	if got := sectionNames(c.Sections); got != "model, ema" {
		t.Fatalf("sections %s", got)
	}
	if s := c.Section("model"); s == nil || !strings.HasPrefix(s.Tensors[0].Name, "module.") || s.Params != 8756 || s.Tensors[0].DType != "float32" {
		t.Fatalf("model section %+v", s)
	}
	if c.ParamCount() != 8756 {
		t.Fatalf("param count %d", c.ParamCount())
	}
	// The argparse.Namespace, as plain values.
	for k, want := range map[string]any{"model": "GeCA-tiny", "image_size": 64, "num_classes": 3, "vae": "ema",
		"load_from": nil, "grad_norm": false, "lr": 1e-4} {
		if got, ok := c.Args[k]; !ok || got != want {
			t.Errorf("args[%s] = %#v, want %#v", k, got, want)
		}
	}
	if b, ok := c.Args["betas"].([]any); !ok || len(b) != 2 || b[0] != 0.9 || b[1] != 0.999 {
		t.Errorf("args.betas = %#v", c.Args["betas"])
	}
	// The optimizer state is summarised, never loaded.
	if c.Opt == nil || c.Opt.Params != 27 || c.Opt.Tensors != 81 || c.Opt.Elements != 2*8756+27 {
		t.Fatalf("opt %+v", c.Opt)
	}
	if g := c.Opt.Groups; len(g) != 1 || g[0]["lr"] != 1e-4 || g[0]["weight_decay"] != 0 {
		t.Fatalf("param groups %#v", g)
	}
	cfg, err := c.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg != tinyConfig {
		t.Fatalf("config %+v\nwant   %+v", cfg, tinyConfig)
	}
}

func TestLoadModelWeights(t *testing.T) {
	c, err := Load("testdata/tiny.pt", Options{Weights: "model"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Weights != "model" {
		t.Fatalf("weights %q", c.Weights)
	}
	checkTensors(t, c, "model") // "module." removed
	if !slices.Equal(c.Names, engine.ParamNames(tinyConfig)) {
		t.Fatalf("names %v", c.Names)
	}
	if _, err := Load("testdata/tiny_nan.pt", Options{Weights: "model"}); err == nil || !strings.Contains(err.Error(), `no "model" weights`) {
		t.Fatalf("asking for absent model weights: %v", err)
	}
	if _, err := Load("testdata/tiny.pt", Options{Weights: "best"}); err == nil || !strings.Contains(err.Error(), `unknown weights "best"`) {
		t.Fatalf("unknown weights: %v", err)
	}
}

func TestLoadHalfPrecision(t *testing.T) {
	for _, tag := range []string{"fp16", "bf16"} {
		t.Run(tag, func(t *testing.T) {
			c, err := Load("testdata/tiny_"+tag+".pt", Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkTensors(t, c, tag)
			want := map[string]string{"fp16": "float16", "bf16": "bfloat16"}[tag]
			if dt := c.Section("ema").Tensors[0].DType; dt != want {
				t.Fatalf("%s: dtype %s", tag, dt)
			}
		})
	}
}

func TestLoadViews(t *testing.T) {
	c, err := Load("testdata/views.pt", Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkTensors(t, c, "views")
}

func TestBareStateDict(t *testing.T) {
	c, err := Load("testdata/tiny_bare.pt", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Weights != "state_dict" || c.Args != nil || c.Opt != nil {
		t.Fatalf("weights %q args %v opt %v", c.Weights, c.Args, c.Opt)
	}
	checkTensors(t, c, "ema")
	_, err = c.Config()
	if err == nil || !strings.Contains(err.Error(), "number of attention heads") || !strings.Contains(err.Error(), c.Path) {
		t.Fatalf("config without heads: %v", err)
	}
	m, c, err := LoadModel("testdata/tiny_bare.pt", Options{Heads: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := tinyConfig
	want.Name, want.GridH, want.GridW = "custom", 32, 32 // no args: the official 256 px grid
	if m.Cfg != want {
		t.Fatalf("config %+v\nwant   %+v", m.Cfg, want)
	}
	if m.ParamCount() != int(c.ParamCount()) {
		t.Fatalf("model has %d parameters, checkpoint %d", m.ParamCount(), c.ParamCount())
	}
}

func TestLoadModel(t *testing.T) {
	m, c, err := LoadModel("testdata/tiny.pt", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Cfg != tinyConfig || m.ParamCount() != 8756 || c.Weights != "ema" {
		t.Fatalf("model %+v, %d params", m.Cfg, m.ParamCount())
	}
	got := m.Tensors()["final_layer.linear.bias"].Data().([]float32)
	sameBits(t, "final_layer.linear.bias", got, loadExpected(t)["ema/final_layer.linear.bias"].Data)
}

func TestConfigDisagreement(t *testing.T) {
	_, _, err := LoadModel("testdata/tiny_xs_args.pt", Options{})
	if err == nil {
		t.Fatal("args.model GeCA-XS with tiny tensors loaded")
	}
	for _, want := range []string{"testdata/tiny_xs_args.pt", "args.model GeCA-XS implies embed_dim 384, but the ema tensors have 16",
		"mlp_dim 64", "32 hidden channels"} {
		t.Run(want, func(t *testing.T) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		})
	}
	c, err := Load("testdata/tiny.pt", Options{Heads: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Config(); err == nil || !strings.Contains(err.Error(), "heads 4 asked for, but the checkpoint says 2") {
		t.Fatalf("heads override against args: %v", err)
	}
}

func TestNaNWeights(t *testing.T) {
	c, err := Load("testdata/tiny_nan.pt", Options{})
	if err != nil {
		t.Fatalf("a NaN is data, the reader must load it: %v", err)
	}
	if len(c.Tensors) != 27 {
		t.Fatal(len(c.Tensors))
	}
	_, _, err = LoadModel("testdata/tiny_nan.pt", Options{})
	if err == nil || !strings.Contains(err.Error(), "testdata/tiny_nan.pt") || !strings.Contains(err.Error(), "final_layer.linear.bias") ||
		!strings.Contains(err.Error(), "non-finite") {
		t.Fatalf("NaN weights: %v", err)
	}
}

func TestHostileFiles(t *testing.T) {
	os.Remove("/tmp/geca-pwned")
	cases := map[string]string{
		"evil_os_system.pt":      "refused global os.system",
		"evil_posix_system.pt":   "refused global posix.system",
		"evil_builtins_exec.pt":  "refused global builtins.exec",
		"evil_subprocess.pt":     "refused global subprocess.Popen",
		"evil_stack_global.pt":   "refused global builtins.eval",
		"evil_eval_args.pt":      "refused global builtins.eval",
		"bad_missing_record.pt":  `storage "1": zip archive has no record bad_missing_record/data/1`,
		"bad_storage_short.pt":   `storage "0" declares 6 float32 elements (24 bytes) but its record bad_storage_short/data/0 holds 12 bytes`,
		"bad_offset.pt":          `storage offset 7 is past the end of storage "0" (6 elements)`,
		"bad_view_size.pt":       `runs past the end of storage "0"`,
		"bad_shape_overflow.pt":  "has more elements than its storage",
		"bad_negative_stride.pt": "negative entry",
		"bad_unrelated.zip":      "no data.pkl: not a PyTorch checkpoint",
		"bad_no_tensors.pt":      `neither "ema" nor "model" (keys: x)`,
		"bad_torchscript.pt":     "TorchScript",
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join("testdata", name)
			_, err := Load(p, Options{})
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: error %v, want one naming the file and containing %q", name, err, want)
			}
		})
	}
	if _, err := os.Stat("/tmp/geca-pwned"); err == nil {
		t.Fatal("a hostile checkpoint ran code")
	}
}

func TestBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile("testdata/tiny.pt")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct{ path, want string }{
		{write("empty.pt", nil), "empty file"},
		{dir, "is a folder"},
		{filepath.Join(dir, "nope.pt"), "no such file"},
		{write("text.pt", []byte("hello, this is not a checkpoint\n")), "unrecognised format"},
		{write("legacy.pt", []byte(legacyTorchMagic+"\x00\x00")), "legacy PyTorch serialization"},
		{write("half.pt", good[:len(good)/2]), "not a valid zip archive"},
		{write("minus1.pt", good[:len(good)-1]), "not a valid zip archive"},
		{write("pk.pt", []byte("PK\x03\x04 and nothing else")), "not a valid zip archive"},
		{write("hugehdr.safetensors", []byte("\xff\xff\xff\xff\xff\xff\xff\x7f{}")), "header length 9223372036854775807 exceeds"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			_, err := Load(c.path, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
				t.Errorf("%s: error %v, want one naming the file and containing %q", filepath.Base(c.path), err, c.want)
			}
		})
	}
}

// TestTruncatedEverywhere cuts tiny.pt at many points: every cut must give an
// error (or, past the central directory's needs, a load), never a panic.
func TestTruncatedEverywhere(t *testing.T) {
	good, err := os.ReadFile("testdata/tiny.pt")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cut.pt")
	for n := 1; n < len(good); n += 997 {
		os.WriteFile(p, good[:n], 0o644)
		if _, err := Load(p, Options{}); err == nil {
			t.Fatalf("cut at %d bytes loaded", n)
		} else if !strings.Contains(err.Error(), p) {
			t.Fatalf("cut at %d: error %v does not name the file", n, err)
		}
	}
}

// TestCorruptedRecords damages the data records' local headers and the
// central directory entries of tiny.pt.
func TestCorruptedRecords(t *testing.T) {
	good, _ := os.ReadFile("testdata/tiny.pt")
	zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bad.pt")
	for _, f := range zr.File {
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		// Overwrite the record's local header signature: the record is gone.
		b := slices.Clone(good)
		hdr := bytes.LastIndex(good[:off], []byte("PK\x03\x04"))
		copy(b[hdr:], "XXXX")
		os.WriteFile(p, b, 0o644)
		_, err = Load(p, Options{})
		if strings.HasSuffix(f.Name, "/version") {
			continue // never read
		}
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), f.Name) {
			t.Errorf("record %s without a local header: %v", f.Name, err)
		}
	}
}

// pickleZip writes a torch-style archive around a raw pickle.
func pickleZip(t testing.TB, dir string, pkl []byte, records map[string][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, b []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	add("archive/data.pkl", pkl)
	keys := make([]string, 0, len(records))
	for k := range records {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add("archive/"+k, records[k])
	}
	zw.Close()
	p := filepath.Join(dir, "archive.pt")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPickleHazards feeds pickles that make gopickle v0.3.0 panic or
// allocate without bound when it is used on its own; the scan must turn each
// into an error.
func TestPickleHazards(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		pkl  string
		want string
	}{
		{"opcode 0xff", "\x80\x02\xff.", "unknown opcode 0xff"},
		{"odd DICT", "\x80\x02(K\x01d.", "odd number"},
		{"odd SETITEMS", "\x80\x02}(K\x01u.", "odd number"},
		{"LONG1 empty", "\x80\x02\x8a\x00.", "LONG1 of length 0"},
		{"LONG4 empty", "\x80\x02\x8b\x00\x00\x00\x00.", "LONG4 of length 0"},
		{"bytes key in OrderedDict", "\x80\x02ccollections\nOrderedDict\n)RC\x01xK\x01s.", "bytes key"},
		{"bytes in frozenset", "\x80\x04(C\x01x\x91.", "set of bytes"},
		{"BINBYTES8 huge", "\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f", "declares 9223372036854775807 bytes"},
		{"BINUNICODE8 huge", "\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x00\x01", "declares"},
		{"FRAME huge", "\x80\x04\x95\x00\x00\x00\x00\x00\x01\x00\x00N.", "FRAME declares"},
		{"BINUNICODE huge", "\x80\x02X\xff\xff\xff\xff", "declares 4294967295 bytes"},
		{"array reconstructor", "\x80\x02carray\n_array_reconstructor\n(tR.", "refused global array._array_reconstructor"},
		{"copy_reg", "\x80\x02ccopy_reg\n_reconstructor\n.", "refused global copy_reg._reconstructor"},
		{"builtins.list passthrough", "\x80\x02cbuiltins\nlist\n.", "refused global builtins.list"},
		{"list called", "\x80\x02])R.", "REDUCE of a value that is not an allowed global"},
		{"computed STACK_GLOBAL", "\x80\x04ccollections\nOrderedDict\n)R\x8c\x04eval\x93.", "not a literal string"},
		{"no STOP", "\x80\x02N", "without STOP"},
		{"empty", "", "without STOP"},
		{"pop empty", "\x80\x020.", "without a MARK"},
		{"unterminated GLOBAL", "\x80\x02cos\nsys", "unterminated"},
		{"ext", "\x80\x02\x82\x01.", "extension"},
		{"protocol 9", "\x80\x09N.", "protocol 9"},
		{"top is int", "\x80\x02K\x05.", "is an int, not a checkpoint dict"},
		{"storage not a tuple", "\x80\x02X\x01\x00\x00\x00xQ.", "persistent id is a string"},
		{"storage of int class", "\x80\x02(X\x07\x00\x00\x00storageccollections\nOrderedDict\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ.", "storage type is"},
		{"self-referencing list", "\x80\x02}(X\x04\x00\x00\x00args]q\x00h\x00ah\x00ah\x00au.", "not an argparse.Namespace"},
		{"NEWOBJ of a string", "\x80\x02X\x01\x00\x00\x00a)\x81.", "NEWOBJ of a value"},
		{"BUILD namespace int key", "\x80\x02cargparse\nNamespace\n)\x81}K\x01K\x02sb.", "attribute name is an int"},
		{"rebuild wrong args", "\x80\x02ctorch._utils\n_rebuild_tensor_v2\n)R.", "called with 0 arguments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := pickleZip(t, dir, []byte(c.pkl), nil)
			_, err := Load(p, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: error %v, want one naming the file and containing %q", c.name, err, c.want)
			}
		})
	}
}

func TestCyclicArgs(t *testing.T) {
	// args = Namespace(x=l) where l = [l, l, ..., l]: converting must stop.
	pkl := "\x80\x02}(X\x04\x00\x00\x00argscargparse\nNamespace\n)\x81}X\x01\x00\x00\x00x]q\x00(" +
		strings.Repeat("h\x00", 50) + "esbX\x03\x00\x00\x00ema" +
		"ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQK\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRuu."
	p := pickleZip(t, t.TempDir(), []byte(pkl), map[string][]byte{"data/0": make([]byte, 8)})
	c, err := Load(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Args["x"].([]any); !ok || len(c.Tensors) != 1 {
		t.Fatalf("args %T tensors %d", c.Args["x"], len(c.Tensors))
	}
}

// rawRecordZip writes a torch-style archive whose storage record "0"
// declares sizes it does not hold.
func rawRecordZip(t *testing.T, method uint16, compressed, uncompressed uint64, body []byte) string {
	t.Helper()
	pkl := "\x80\x02}(X\x03\x00\x00\x00emaccollections\nOrderedDict\n)R(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ\x00\x00\x00\x10tQK\x00J\x00\x00\x00\x10\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRuu."
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "archive/data.pkl", Method: zip.Store})
	w.Write([]byte(pkl))
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "archive/data/0", Method: method, CompressedSize64: compressed, UncompressedSize64: uncompressed})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(body)
	zw.Close()
	p := filepath.Join(t.TempDir(), "huge.pt")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

// TestHugeDeclaredSizes: records and storages that declare far more than the
// file holds are refused before anything of that size is allocated.
func TestHugeDeclaredSizes(t *testing.T) {
	body := make([]byte, 64)
	cases := []struct {
		p, want string
	}{
		{rawRecordZip(t, zip.Store, 1<<40, 1<<40, body), "runs past the end of the"},
		{rawRecordZip(t, zip.Store, 64, 1<<40, body), "is stored but declares 64 bytes compressed"},
		{rawRecordZip(t, zip.Deflate, 64, 1<<40, body), "impossible for deflate"},
		{rawRecordZip(t, zip.Store, 64, 64, body), "declares 268435456 float32 elements (1073741824 bytes) but its record archive/data/0 holds 64 bytes"},
		{rawRecordZip(t, 99, 64, 64, body), "compression method 99"},
	}
	var before, after runtime.MemStats
	for ci, c := range cases {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			runtime.ReadMemStats(&before)
			_, err := Load(c.p, Options{})
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.p) {
				t.Errorf("error %v, want one naming the file and containing %q", err, c.want)
			}
			if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
				t.Errorf("%q: refusing it allocated %d bytes", c.want, d)
			}
		})
	}
}
