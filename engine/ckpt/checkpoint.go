package ckpt

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
	"gorgonia.org/tensor"

	"geca/engine"
	"geca/internal/membudget"
)

// Options choose what Load reads.
type Options struct {
	// Weights picks the state_dict of an official checkpoint: "" (ema when
	// present, as the official samplers do, else model), "ema" or "model".
	Weights string
	// Heads sets the number of attention heads when neither a preset name
	// nor the file says it (tensor shapes cannot: see Checkpoint.Config).
	// 0 means derive.
	Heads int
}

// Checkpoint is a loaded checkpoint: the chosen weights as float32 tensors
// with their official names, and what else the file holds.
type Checkpoint struct {
	Path    string
	Format  string // "pytorch" (torch.save zip) or "safetensors"
	Weights string // the section Tensors came from: "ema", "model", "state_dict" (a bare one) or "safetensors"

	Tensors map[string]*tensor.Dense // official names ("module." removed), float32
	Names   []string                 // Tensors' names in file order

	Sections []Section         // every set of weights in the file, in file order
	Args     map[string]any    // training arguments (argparse.Namespace), nil when absent
	Opt      *OptInfo          // optimizer state (summarised, never loaded), nil when absent
	Extra    []string          // other top-level keys of the checkpoint dict
	Meta     map[string]string // safetensors metadata

	heads int
}

// Section is one set of weights in a file: "ema", "model", "state_dict" for
// a bare state_dict, or "safetensors".
type Section struct {
	Name    string
	Tensors []TensorInfo
	Params  int64 // total elements
}

// TensorInfo describes a tensor as stored.
type TensorInfo struct {
	Name  string
	Shape []int
	DType string // "float32", "float16", "bfloat16", ...
}

// OptInfo summarises an optimizer state_dict (AdamW in the official trainer).
type OptInfo struct {
	Params   int              // parameters with state
	Tensors  int              // tensors in the state (exp_avg, exp_avg_sq, step)
	Elements int64            // their total elements
	Groups   []map[string]any // param_groups hyper-parameters ("params" left out)
}

// Section returns the named section, or nil.
func (c *Checkpoint) Section(name string) *Section {
	for i := range c.Sections {
		if c.Sections[i].Name == name {
			return &c.Sections[i]
		}
	}
	return nil
}

// ParamCount is the number of elements in the loaded weights.
func (c *Checkpoint) ParamCount() int64 {
	var n int64
	for _, t := range c.Tensors {
		n += int64(t.Shape().TotalSize())
	}
	return n
}

const legacyTorchMagic = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"

// Load reads a checkpoint: a torch.save zip file (the official best_ckpt.pt
// dict {model, ema, opt, args}, or a bare state_dict) or a safetensors file.
// The format is told by content, not by name. Nothing in the file is
// executed; the optimizer state is never read.
func Load(path string, opt Options) (*Checkpoint, error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(path, f, size, opt)
}

// Read is Load for a checkpoint held in r (size bytes), for example one
// embedded in the binary; name stands for the file in errors.
func Read(name string, r io.ReaderAt, size int64, opt Options) (*Checkpoint, error) {
	path, f := name, r
	if size <= 0 {
		return nil, fmt.Errorf("%s: empty file", path)
	}
	switch opt.Weights {
	case "", "ema", "model":
	default:
		return nil, fmt.Errorf("%s: unknown weights %q (want ema or model)", path, opt.Weights)
	}
	if opt.Heads < 0 {
		return nil, fmt.Errorf("%s: heads %d is negative", path, opt.Heads)
	}
	head := make([]byte, 16)
	n, _ := f.ReadAt(head, 0)
	head = head[:n]
	var c *Checkpoint
	var err error
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		c, err = loadTorch(path, f, size, opt)
	case bytes.HasPrefix(head, []byte(legacyTorchMagic)):
		err = fmt.Errorf("%s: legacy PyTorch serialization (torch < 1.6) is not supported; re-save it with a newer torch.save", path)
	case len(head) >= 9 && head[8] == '{' && binary.LittleEndian.Uint64(head) <= uint64(size-8):
		c, err = loadSafetensorsCheckpoint(path, f, size, opt)
	case len(head) >= 8 && binary.LittleEndian.Uint64(head) > uint64(size-8) && (len(head) < 9 || head[8] == '{'):
		err = fmt.Errorf("%s: safetensors: header length %d exceeds the %d bytes left in the file", path, binary.LittleEndian.Uint64(head), size-8)
	default:
		// A zip archive may start with other bytes (its directory is at the
		// end); anything else is not ours.
		if _, zerr := zip.NewReader(f, size); zerr == nil {
			c, err = loadTorch(path, f, size, opt)
		} else {
			err = fmt.Errorf("%s: unrecognised format: neither a PyTorch zip checkpoint nor safetensors", path)
		}
	}
	if err != nil {
		return nil, err
	}
	c.heads = opt.Heads
	return c, nil
}

func loadSafetensorsCheckpoint(path string, r io.ReaderAt, size int64, opt Options) (*Checkpoint, error) {
	ts, names, meta, err := decodeSafetensors(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if w := meta[MetaWeights]; opt.Weights != "" && w != "" && w != opt.Weights {
		return nil, fmt.Errorf("%s: holds only the %s weights, %s were asked for", path, w, opt.Weights)
	}
	c := &Checkpoint{Path: path, Format: "safetensors", Weights: "safetensors", Tensors: ts, Names: names, Meta: meta}
	if w := meta[MetaWeights]; w != "" {
		c.Weights = w
	}
	sec := Section{Name: c.Weights}
	for _, n := range names {
		sh := []int(ts[n].Shape())
		sec.Tensors = append(sec.Tensors, TensorInfo{Name: n, Shape: sh, DType: "float32"})
		sec.Params += int64(ts[n].Shape().TotalSize())
	}
	c.Sections = []Section{sec}
	if a := meta["geca.args"]; a != "" {
		args, err := decodeArgsJSON(a)
		if err != nil {
			return nil, fmt.Errorf("%s: metadata geca.args: %w", path, err)
		}
		c.Args = args
	}
	return c, nil
}

// stateDict is one state_dict found in the pickle.
type stateDict struct {
	name    string
	keys    []string
	tensors []*tensorRef
}

func loadTorch(path string, f io.ReaderAt, size int64, opt Options) (*Checkpoint, error) {
	a, err := openTorchZip(path, f, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	top, err := a.load()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := &Checkpoint{Path: path, Format: "pytorch"}
	var sds []stateDict
	if sd, ok := asStateDict("state_dict", top); ok {
		sds = append(sds, sd)
	} else {
		entries, ok := dictEntries(top)
		if !ok {
			return nil, fmt.Errorf("%s: the pickled object is %s, not a checkpoint dict or state_dict", path, describe(top))
		}
		seenKey := map[string]bool{}
		for _, e := range entries {
			key, _ := e.key.(string)
			switch key {
			case "ema", "model", "opt", "args":
				// Each is read once: a pickle naming one many times (cheap, by
				// reference) would make the work quadratic.
				if seenKey[key] {
					return nil, fmt.Errorf("%s: the checkpoint dict holds %q twice", path, key)
				}
				seenKey[key] = true
			}
			switch key {
			case "ema", "model":
				sd, ok := asStateDict(key, e.value)
				if !ok {
					return nil, fmt.Errorf("%s: %q is %s, not a state_dict of tensors", path, key, describe(e.value))
				}
				sds = append(sds, sd)
			case "opt":
				c.Opt = summariseOpt(e.value)
			case "args":
				c.Args = argsMap(e.value)
				if c.Args == nil {
					return nil, fmt.Errorf("%s: \"args\" is %s, not an argparse.Namespace or dict", path, describe(e.value))
				}
			default:
				if key == "" {
					key = "(" + describe(e.key) + ")"
				}
				c.Extra = append(c.Extra, key)
			}
		}
		if len(sds) == 0 {
			keys := append([]string(nil), c.Extra...)
			if c.Opt != nil {
				keys = append(keys, "opt")
			}
			if c.Args != nil {
				keys = append(keys, "args")
			}
			return nil, fmt.Errorf("%s: no weights: the checkpoint dict has neither \"ema\" nor \"model\" (keys: %s)", path, strings.Join(keys, ", "))
		}
	}
	for _, sd := range sds {
		sec := Section{Name: sd.name}
		for i, t := range sd.tensors {
			sec.Tensors = append(sec.Tensors, TensorInfo{Name: sd.keys[i], Shape: t.shape, DType: t.storage.dtype.String()})
			sec.Params += t.numel
		}
		c.Sections = append(c.Sections, sec)
	}
	var chosen *stateDict
	for _, want := range []string{opt.Weights, "ema", "model", "state_dict"} {
		for i := range sds {
			if want != "" && sds[i].name == want {
				chosen = &sds[i]
				break
			}
		}
		if chosen != nil || opt.Weights != "" {
			break
		}
	}
	if chosen == nil {
		return nil, fmt.Errorf("%s: no %q weights in the checkpoint (it holds: %s)", path, opt.Weights, sectionNames(c.Sections))
	}
	c.Weights = chosen.name
	if err := checkTensorMemory(chosen); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Tensors = make(map[string]*tensor.Dense, len(chosen.keys))
	for i, key := range chosen.keys {
		name := key
		if chosen.name == "model" {
			name = strings.TrimPrefix(key, "module.")
		}
		if _, dup := c.Tensors[name]; dup {
			return nil, fmt.Errorf("%s: %s holds %q twice (with and without the module. prefix)", path, chosen.name, name)
		}
		t := chosen.tensors[i]
		data, err := readTensor(t)
		if err != nil {
			return nil, fmt.Errorf("%s: %s tensor %q: %w", path, chosen.name, key, err)
		}
		c.Tensors[name] = newDense(t.shape, data)
		c.Names = append(c.Names, name)
	}
	return c, nil
}

// checkTensorMemory refuses a state_dict whose float32 copy would pass the
// memory limit. Tensors are views: many can share one storage, so what the
// file holds does not bound what reading them allocates.
func checkTensorMemory(sd *stateDict) error {
	var total int64
	for _, t := range sd.tensors {
		n := t.numel
		if !t.contiguous() {
			n = membudget.Sum(n, t.span()) // the span is read, then gathered
		}
		total = membudget.Sum(total, membudget.Bytes(int(n), 4))
	}
	return membudget.Check(fmt.Sprintf("the %d tensors of %s as float32", len(sd.tensors), sd.name), total)
}

func sectionNames(secs []Section) string {
	var s []string
	for _, x := range secs {
		s = append(s, x.Name)
	}
	return strings.Join(s, ", ")
}

type entry struct{ key, value any }

// dictEntries lists a dict or OrderedDict in order.
func dictEntries(v any) ([]entry, bool) {
	switch d := v.(type) {
	case *types.Dict:
		out := make([]entry, len(*d))
		for i, e := range *d {
			out[i] = entry{e.Key, e.Value}
		}
		return out, true
	case *types.OrderedDict:
		out := make([]entry, 0, d.Len())
		for el := d.List.Front(); el != nil; el = el.Next() {
			e := el.Value.(*types.OrderedDictEntry)
			out = append(out, entry{e.Key, e.Value})
		}
		return out, true
	}
	return nil, false
}

// asStateDict accepts a non-empty dict whose keys are strings and values
// tensors.
func asStateDict(name string, v any) (stateDict, bool) {
	entries, ok := dictEntries(v)
	if !ok || len(entries) == 0 {
		return stateDict{}, false
	}
	sd := stateDict{name: name}
	for _, e := range entries {
		k, ok := e.key.(string)
		t, ok2 := e.value.(*tensorRef)
		if !ok || !ok2 {
			return stateDict{}, false
		}
		sd.keys = append(sd.keys, k)
		sd.tensors = append(sd.tensors, t)
	}
	return sd, true
}

// summariseOpt counts what an optimizer state holds. A pickle can refer to
// one object many times (N references to a dict of M entries cost N + M
// opcodes), so each dict is counted once and the whole walk shares one
// budget of entries: the work stays linear in the file, whatever it
// shares (docs/safety.md).
func summariseOpt(v any) *OptInfo {
	o := &OptInfo{}
	b := &budget{n: optBudget}
	seen := map[any]bool{}
	entries, _ := dictEntries(v)
	for _, e := range entries {
		switch e.key {
		case "state":
			if !isContainer(e.value) || seen[e.value] {
				continue
			}
			seen[e.value] = true
			params, _ := dictEntries(e.value)
			o.Params = len(params)
			for _, p := range params {
				if b.n--; b.n < 0 {
					return o
				}
				if isContainer(p.value) {
					if seen[p.value] {
						continue
					}
					seen[p.value] = true
				}
				ts, _ := dictEntries(p.value)
				for _, t := range ts {
					if b.n--; b.n < 0 {
						return o
					}
					if tr, ok := t.value.(*tensorRef); ok {
						o.Tensors++
						o.Elements += tr.numel
					}
				}
			}
		case "param_groups":
			l, _ := e.value.(*types.List)
			if l == nil || seen[l] {
				continue
			}
			seen[l] = true
			for _, g := range *l {
				if b.n < 0 || len(o.Groups) >= maxOptGroups {
					break
				}
				ge, _ := dictEntries(g)
				m := map[string]any{}
				for _, kv := range ge {
					if b.n--; b.n < 0 {
						break
					}
					if k, ok := kv.key.(string); ok && k != "params" {
						m[k] = toGo(kv.value, b, 0)
					}
				}
				o.Groups = append(o.Groups, m)
			}
		}
	}
	return o
}

// Bounds of an optimizer summary: entries visited in all, and parameter
// groups described.
const (
	optBudget    = 1 << 20
	maxOptGroups = 64
)

// isContainer reports whether v is a dict a pickle can share by reference
// (the keys of a seen-set must be comparable pointers).
func isContainer(v any) bool {
	switch v.(type) {
	case *types.Dict, *types.OrderedDict:
		return true
	}
	return false
}

// argsMap converts the pickled training arguments to plain Go values.
func argsMap(v any) map[string]any {
	var entries []entry
	switch x := v.(type) {
	case *Namespace:
		for k, val := range x.attrs {
			entries = append(entries, entry{k, val})
		}
	default:
		var ok bool
		if entries, ok = dictEntries(v); !ok {
			return nil
		}
	}
	b := &budget{n: 10000}
	m := make(map[string]any, len(entries))
	for _, e := range entries {
		if k, ok := e.key.(string); ok {
			m[k] = toGo(e.value, b, 0)
		}
	}
	return m
}

// budget bounds the work of converting a pickled structure (which may be
// cyclic or share sub-structures exponentially).
type budget struct{ n int }

// toGo converts a pickled value to nil, bool, int, float64, string, []any or
// map[string]any; what it cannot represent becomes a short description.
func toGo(v any, b *budget, depth int) any {
	b.n--
	if b.n < 0 || depth > 8 {
		return "…"
	}
	switch x := v.(type) {
	case nil, bool, int, float64, string:
		return x
	case *big.Int:
		return x.String()
	case []byte:
		return fmt.Sprintf("bytes(%d)", len(x))
	case *types.Tuple:
		return listToGo(*x, b, depth)
	case *types.List:
		return listToGo(*x, b, depth)
	case *Namespace:
		m := map[string]any{}
		for k, val := range x.attrs {
			m[k] = toGo(val, b, depth+1)
		}
		return m
	case *tensorRef:
		return fmt.Sprintf("tensor%v %s", x.shape, x.storage.dtype)
	}
	if entries, ok := dictEntries(v); ok {
		m := map[string]any{}
		for _, e := range entries {
			k, ok := e.key.(string)
			if !ok {
				k = fmt.Sprint(toGo(e.key, b, depth+1))
			}
			m[k] = toGo(e.value, b, depth+1)
		}
		return m
	}
	return describe(v)
}

func listToGo(l []any, b *budget, depth int) []any {
	out := make([]any, 0, min(len(l), 64))
	for _, it := range l {
		if b.n < 0 {
			out = append(out, "…")
			break
		}
		out = append(out, toGo(it, b, depth+1))
	}
	return out
}

// ArgNames returns the training-argument names, sorted.
func (c *Checkpoint) ArgNames() []string {
	names := make([]string, 0, len(c.Args))
	for k := range c.Args {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// LoadModel loads path and builds the model it holds (engine.NewModel checks
// every official key, shape and value; its errors name the tensor).
func LoadModel(path string, opt Options) (*engine.Model, *Checkpoint, error) {
	c, err := Load(path, opt)
	if err != nil {
		return nil, nil, err
	}
	m, err := c.Model()
	return m, c, err
}

// ErrTrainingState is the error for a trainer's state file opened as a
// model: its tensors are the trainer's, under other names, so the model's
// list of missing tensors would say nothing useful.
var ErrTrainingState = errors.New("a training state, for geca train --resume, not a model: open the model file saved beside it")

// ReadModel is LoadModel for a checkpoint held in r (see Read).
func ReadModel(name string, r io.ReaderAt, size int64, opt Options) (*engine.Model, *Checkpoint, error) {
	c, err := Read(name, r, size, opt)
	if err != nil {
		return nil, nil, err
	}
	m, err := c.Model()
	return m, c, err
}

// Model builds the model c holds. A trainer's state file holds none
// (ErrTrainingState).
func (c *Checkpoint) Model() (*engine.Model, error) {
	if c.Weights == TrainingState {
		return nil, fmt.Errorf("%s is %w", c.Path, ErrTrainingState)
	}
	cfg, err := c.Config()
	if err != nil {
		return nil, err
	}
	m, err := engine.NewModel(cfg, c.Tensors)
	if err != nil {
		return nil, fmt.Errorf("%s (%s weights): %w", c.Path, c.Weights, err)
	}
	return m, nil
}
