package ckpt

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"geca/internal/membudget"
)

// scanPickle checks a pickle stream before gopickle's unpickler sees it. It
// walks the opcodes exactly as gopickle v0.3.0 does, tracking a coarse kind
// for every stack and memo slot, and refuses anything that would make the
// unpickler allocate more than the stream holds, index out of range, hash an
// unhashable value, or resolve a global that is not on the allow-list. After
// it passes, unpickling can only fail with an ordinary error.
//
// What gopickle would otherwise do with a hostile stream (v0.3.0):
//   - length-prefixed arguments (BINBYTES8, FRAME, ...) are allocated at their
//     declared size before reading: lengths are checked against the bytes left;
//   - opcode 0xff indexes past its 255-entry dispatch table: unknown opcodes
//     are refused;
//   - DICT and SETITEMS with an odd number of items index past the slice, and
//     LONG1/LONG4 of length 0 index byte -1: both refused;
//   - OrderedDict, set and frozenset hash their keys in a Go map, where a
//     bytes value ([]byte) panics: such keys are refused;
//   - collections/builtins/copy_reg/array globals are resolved before any
//     custom FindClass is asked: the allow-list is applied here, to every
//     GLOBAL, INST and STACK_GLOBAL, so none of them is reached unless
//     allowed (array._array_reconstructor, which panics on short input, is
//     not);
//   - every opcode allocates (a MARK alone 280 bytes, from one byte of
//     input), so a stream of a few MB could make it allocate GBs: the
//     opcodes, the MARK depth and an estimate of the bytes the unpickler
//     allocates are capped (a GeCA checkpoint's pickle has a few thousand
//     opcodes and a MARK depth under 10).
func scanPickle(data []byte) error {
	s := scanner{data: data, memo: map[int]akind{}}
	return s.run()
}

// Limits of a pickle stream (docs/safety.md).
const (
	maxPickleOps   = 1 << 22   // opcodes
	maxMarkDepth   = 1024      // MARKs open at once
	maxPickleAlloc = 512 << 20 // estimated bytes the unpickler allocates
)

// opCost estimates what gopickle allocates for one opcode (a MARK makes a
// 16-slot stack, a container its header, a set a map), string payloads
// aside; it only has to be an upper bound of the right size.
func opCost(op byte) int64 {
	switch op {
	case '(':
		return 320
	case 0x8f, 0x90, 0x91: // sets: Go maps
		return 256
	case '}', ']', ')', 'd', 'l', 't', 0x85, 0x86, 0x87, 'R', 0x81, 0x92, 'o', 'i', 'c', 0x93:
		return 96
	}
	return 48
}

type akind uint8

const (
	kNone akind = iota
	kScalar
	kStr
	kBytes
	kTuple
	kList
	kDict
	kSet
	kGlobal
	kObj
)

type aval struct {
	k akind
	s string // the value of a kStr, the qualified name of a kGlobal
}

type scanner struct {
	data  []byte
	pos   int
	stack []aval
	meta  [][]aval
	memo  map[int]akind
	strs  map[int]string // memoised string values (for STACK_GLOBAL)
	ops   int            // opcodes so far
	alloc int64          // estimated bytes the unpickler allocates so far
}

type scanError struct {
	off int
	msg string
}

func (e *scanError) Error() string { return fmt.Sprintf("pickle byte %d: %s", e.off, e.msg) }

func (s *scanner) fail(format string, args ...any) error {
	return &scanError{s.pos, fmt.Sprintf(format, args...)}
}

func (s *scanner) need(n uint64, what string) ([]byte, error) {
	if n > uint64(len(s.data)-s.pos) {
		return nil, s.fail("%s declares %d bytes but only %d are left", what, n, len(s.data)-s.pos)
	}
	b := s.data[s.pos : s.pos+int(n)]
	s.pos += int(n)
	s.alloc += int64(n) // payloads are copied into strings, bytes or big ints
	return b, nil
}

func (s *scanner) line(what string) (string, error) {
	for i := s.pos; i < len(s.data); i++ {
		if s.data[i] == '\n' {
			l := string(s.data[s.pos:i])
			s.alloc += int64(len(l))
			s.pos = i + 1
			return l, nil
		}
	}
	return "", s.fail("%s: unterminated line", what)
}

func (s *scanner) push(v aval) { s.stack = append(s.stack, v) }

func (s *scanner) pop(what string) (aval, error) {
	if len(s.stack) == 0 {
		return aval{}, s.fail("%s on an empty stack", what)
	}
	v := s.stack[len(s.stack)-1]
	s.stack = s.stack[:len(s.stack)-1]
	return v, nil
}

func (s *scanner) last(what string) (aval, error) {
	if len(s.stack) == 0 {
		return aval{}, s.fail("%s on an empty stack", what)
	}
	return s.stack[len(s.stack)-1], nil
}

func (s *scanner) popMark(what string) ([]aval, error) {
	if len(s.meta) == 0 {
		return nil, s.fail("%s without a MARK", what)
	}
	items := s.stack
	s.stack = s.meta[len(s.meta)-1]
	s.meta = s.meta[:len(s.meta)-1]
	return items, nil
}

func (s *scanner) global(module, name string) (aval, error) {
	q := module + "." + name
	if _, ok := allowedGlobals[q]; !ok {
		return aval{}, &refusedGlobalError{q}
	}
	return aval{k: kGlobal, s: q}, nil
}

// hashable reports whether gopickle can use v as a Go map key.
func hashable(v aval) bool { return v.k != kBytes }

func (s *scanner) memoPut(i int, v aval) {
	s.memo[i] = v.k
	if v.k == kStr || v.k == kGlobal {
		if s.strs == nil {
			s.strs = map[int]string{}
		}
		s.strs[i] = v.s
	} else {
		delete(s.strs, i)
	}
}

func (s *scanner) memoGet(i int) aval {
	k, ok := s.memo[i]
	if !ok {
		return aval{k: kNone} // gopickle pushes nil for a missing memo entry
	}
	return aval{k: k, s: s.strs[i]}
}

func (s *scanner) run() error {
	for {
		if s.pos >= len(s.data) {
			return s.fail("pickle ends without STOP")
		}
		op := s.data[s.pos]
		s.pos++
		s.ops++
		s.alloc += opCost(op)
		if s.ops > maxPickleOps {
			return s.fail("more than %d opcodes (a checkpoint's pickle has a few thousand)", maxPickleOps)
		}
		if s.alloc > maxPickleAlloc {
			return s.fail("the unpickler would allocate more than %d MB for this stream", maxPickleAlloc>>20)
		}
		switch op {
		case '(': // MARK
			if len(s.meta) >= maxMarkDepth {
				return s.fail("more than %d nested MARKs", maxMarkDepth)
			}
			s.meta = append(s.meta, s.stack)
			s.stack = nil
		case '.': // STOP
			if _, err := s.pop("STOP"); err != nil {
				return err
			}
			return membudget.Check("unpickling the checkpoint's object", s.alloc)
		case '0': // POP (pops a mark when the stack is empty, as gopickle does)
			if len(s.stack) == 0 {
				if _, err := s.popMark("POP"); err != nil {
					return err
				}
			} else {
				s.stack = s.stack[:len(s.stack)-1]
			}
		case '1': // POP_MARK
			if _, err := s.popMark("POP_MARK"); err != nil {
				return err
			}
		case '2': // DUP
			v, err := s.last("DUP")
			if err != nil {
				return err
			}
			s.push(v)
		case 'F', 'I', 'L': // FLOAT, INT, LONG (decimal text)
			l, err := s.line("number")
			if err != nil {
				return err
			}
			if op == 'L' && len(l) == 0 {
				return s.fail("empty LONG")
			}
			s.push(aval{k: kScalar})
		case 'J': // BININT
			if _, err := s.need(4, "BININT"); err != nil {
				return err
			}
			s.push(aval{k: kScalar})
		case 'K': // BININT1
			if _, err := s.need(1, "BININT1"); err != nil {
				return err
			}
			s.push(aval{k: kScalar})
		case 'M': // BININT2
			if _, err := s.need(2, "BININT2"); err != nil {
				return err
			}
			s.push(aval{k: kScalar})
		case 'G': // BINFLOAT
			if _, err := s.need(8, "BINFLOAT"); err != nil {
				return err
			}
			s.push(aval{k: kScalar})
		case 'N':
			s.push(aval{k: kNone})
		case 0x88, 0x89: // NEWTRUE, NEWFALSE
			s.push(aval{k: kScalar})
		case 0x8a: // LONG1
			b, err := s.need(1, "LONG1")
			if err != nil {
				return err
			}
			if b[0] == 0 {
				return s.fail("LONG1 of length 0")
			}
			if _, err := s.need(uint64(b[0]), "LONG1"); err != nil {
				return err
			}
			s.push(aval{k: kScalar})
		case 0x8b: // LONG4
			b, err := s.need(4, "LONG4")
			if err != nil {
				return err
			}
			n := int32(binary.LittleEndian.Uint32(b))
			if n <= 0 {
				return s.fail("LONG4 of length %d", n)
			}
			if _, err := s.need(uint64(n), "LONG4"); err != nil {
				return err
			}
			s.push(aval{k: kScalar})
		case 'S': // STRING (quoted)
			l, err := s.line("STRING")
			if err != nil {
				return err
			}
			if len(l) < 2 || l[0] != l[len(l)-1] || (l[0] != '\'' && l[0] != '"') {
				return s.fail("STRING argument is not quoted")
			}
			s.push(aval{k: kStr, s: l[1 : len(l)-1]})
		case 'V': // UNICODE (gopickle keeps the raw text)
			l, err := s.line("UNICODE")
			if err != nil {
				return err
			}
			s.push(aval{k: kStr, s: l})
		case 'T', 'X', 'B': // BINSTRING, BINUNICODE, BINBYTES: 4-byte length
			b, err := s.need(4, "length")
			if err != nil {
				return err
			}
			n := binary.LittleEndian.Uint32(b)
			if op == 'T' && int32(n) < 0 {
				return s.fail("BINSTRING with negative length")
			}
			v, err := s.need(uint64(n), "string")
			if err != nil {
				return err
			}
			if op == 'B' {
				s.push(aval{k: kBytes})
			} else {
				s.push(aval{k: kStr, s: string(v)})
			}
		case 'U', 'C', 0x8c: // SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE
			b, err := s.need(1, "length")
			if err != nil {
				return err
			}
			v, err := s.need(uint64(b[0]), "string")
			if err != nil {
				return err
			}
			if op == 'C' {
				s.push(aval{k: kBytes})
			} else {
				s.push(aval{k: kStr, s: string(v)})
			}
		case 0x8d, 0x8e, 0x96: // BINUNICODE8, BINBYTES8, BYTEARRAY8
			b, err := s.need(8, "length")
			if err != nil {
				return err
			}
			v, err := s.need(binary.LittleEndian.Uint64(b), "string")
			if err != nil {
				return err
			}
			switch op {
			case 0x8d:
				s.push(aval{k: kStr, s: string(v)})
			case 0x8e:
				s.push(aval{k: kBytes})
			default:
				s.push(aval{k: kObj}) // *types.ByteArray, a pointer
			}
		case 0x95: // FRAME: the frame's bytes follow and are scanned in line
			b, err := s.need(8, "FRAME")
			if err != nil {
				return err
			}
			if n := binary.LittleEndian.Uint64(b); n > uint64(len(s.data)-s.pos) {
				return s.fail("FRAME declares %d bytes but only %d are left", n, len(s.data)-s.pos)
			}
		case 0x80: // PROTO
			b, err := s.need(1, "PROTO")
			if err != nil {
				return err
			}
			if b[0] > 5 {
				return s.fail("unsupported pickle protocol %d", b[0])
			}
		case 'P': // PERSID (text)
			if _, err := s.line("PERSID"); err != nil {
				return err
			}
			s.push(aval{k: kObj})
		case 'Q': // BINPERSID
			if _, err := s.pop("BINPERSID"); err != nil {
				return err
			}
			s.push(aval{k: kObj})
		case 'R': // REDUCE
			args, err := s.pop("REDUCE")
			if err != nil {
				return err
			}
			fn, err := s.pop("REDUCE")
			if err != nil {
				return err
			}
			if fn.k != kGlobal || args.k != kTuple {
				return s.fail("REDUCE of a value that is not an allowed global applied to a tuple")
			}
			s.push(aval{k: kObj})
		case 0x81: // NEWOBJ
			args, err := s.pop("NEWOBJ")
			if err != nil {
				return err
			}
			cls, err := s.pop("NEWOBJ")
			if err != nil {
				return err
			}
			if cls.k != kGlobal || args.k != kTuple {
				return s.fail("NEWOBJ of a value that is not an allowed class")
			}
			s.push(aval{k: kObj})
		case 0x92: // NEWOBJ_EX
			var cls aval
			var err error
			for range 2 {
				if _, err = s.pop("NEWOBJ_EX"); err != nil {
					return err
				}
			}
			if cls, err = s.pop("NEWOBJ_EX"); err != nil {
				return err
			}
			if cls.k != kGlobal {
				return s.fail("NEWOBJ_EX of a value that is not an allowed class")
			}
			s.push(aval{k: kObj})
		case 'c', 'i': // GLOBAL, INST: module and name on two lines
			mod, err := s.line("module")
			if err != nil {
				return err
			}
			name, err := s.line("name")
			if err != nil {
				return err
			}
			g, err := s.global(mod, name)
			if err != nil {
				return err
			}
			if op == 'c' {
				s.push(g)
			} else {
				if _, err := s.popMark("INST"); err != nil {
					return err
				}
				s.push(aval{k: kObj})
			}
		case 0x93: // STACK_GLOBAL
			name, err := s.pop("STACK_GLOBAL")
			if err != nil {
				return err
			}
			mod, err := s.pop("STACK_GLOBAL")
			if err != nil {
				return err
			}
			if name.k != kStr || mod.k != kStr {
				return s.fail("STACK_GLOBAL with a module or name that is not a literal string")
			}
			g, err := s.global(mod.s, name.s)
			if err != nil {
				return err
			}
			s.push(g)
		case 'o': // OBJ
			items, err := s.popMark("OBJ")
			if err != nil {
				return err
			}
			if len(items) == 0 || items[0].k != kGlobal {
				return s.fail("OBJ of a value that is not an allowed class")
			}
			s.push(aval{k: kObj})
		case 0x82, 0x83, 0x84: // EXT1, EXT2, EXT4
			return s.fail("extension registry codes are not supported")
		case 0x97: // NEXT_BUFFER
			return s.fail("out-of-band buffers are not supported")
		case 0x98: // READONLY_BUFFER: a no-op without MakeReadOnly
		case 'a': // APPEND
			if _, err := s.pop("APPEND"); err != nil {
				return err
			}
			l, err := s.pop("APPEND")
			if err != nil {
				return err
			}
			s.push(l)
		case 'e': // APPENDS
			if _, err := s.popMark("APPENDS"); err != nil {
				return err
			}
			l, err := s.pop("APPENDS")
			if err != nil {
				return err
			}
			s.push(l)
		case 'b': // BUILD
			if _, err := s.pop("BUILD"); err != nil {
				return err
			}
			if _, err := s.last("BUILD"); err != nil {
				return err
			}
		case 'd': // DICT
			items, err := s.popMark("DICT")
			if err != nil {
				return err
			}
			if len(items)%2 != 0 {
				return s.fail("DICT with an odd number (%d) of keys and values", len(items))
			}
			s.push(aval{k: kDict})
		case '}':
			s.push(aval{k: kDict})
		case 's': // SETITEM
			if _, err := s.pop("SETITEM"); err != nil {
				return err
			}
			key, err := s.pop("SETITEM")
			if err != nil {
				return err
			}
			if !hashable(key) {
				return s.fail("SETITEM with a bytes key")
			}
			if _, err := s.last("SETITEM"); err != nil {
				return err
			}
		case 'u': // SETITEMS
			items, err := s.popMark("SETITEMS")
			if err != nil {
				return err
			}
			if len(items)%2 != 0 {
				return s.fail("SETITEMS with an odd number (%d) of keys and values", len(items))
			}
			for i := 0; i < len(items); i += 2 {
				if !hashable(items[i]) {
					return s.fail("SETITEMS with a bytes key")
				}
			}
			d, err := s.pop("SETITEMS")
			if err != nil {
				return err
			}
			s.push(d)
		case 0x8f: // EMPTY_SET
			s.push(aval{k: kSet})
		case 0x90, 0x91: // ADDITEMS, FROZENSET
			items, err := s.popMark("ADDITEMS")
			if err != nil {
				return err
			}
			for _, it := range items {
				if !hashable(it) {
					return s.fail("set of bytes values")
				}
			}
			if op == 0x90 {
				set, err := s.pop("ADDITEMS")
				if err != nil {
					return err
				}
				s.push(set)
			} else {
				s.push(aval{k: kSet})
			}
		case 'l': // LIST
			if _, err := s.popMark("LIST"); err != nil {
				return err
			}
			s.push(aval{k: kList})
		case ']':
			s.push(aval{k: kList})
		case 't': // TUPLE
			if _, err := s.popMark("TUPLE"); err != nil {
				return err
			}
			s.push(aval{k: kTuple})
		case ')':
			s.push(aval{k: kTuple})
		case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
			for range int(op - 0x84) {
				if _, err := s.pop("TUPLEn"); err != nil {
					return err
				}
			}
			s.push(aval{k: kTuple})
		case 'g', 'p': // GET, PUT (decimal index)
			l, err := s.line("memo index")
			if err != nil {
				return err
			}
			i, err := strconv.Atoi(l)
			if err != nil {
				return s.fail("bad memo index %q", l)
			}
			if err := s.memoOp(op == 'g', i); err != nil {
				return err
			}
		case 'h', 'q': // BINGET, BINPUT
			b, err := s.need(1, "memo index")
			if err != nil {
				return err
			}
			if err := s.memoOp(op == 'h', int(b[0])); err != nil {
				return err
			}
		case 'j', 'r': // LONG_BINGET, LONG_BINPUT
			b, err := s.need(4, "memo index")
			if err != nil {
				return err
			}
			if err := s.memoOp(op == 'j', int(binary.LittleEndian.Uint32(b))); err != nil {
				return err
			}
		case 0x94: // MEMOIZE
			v, err := s.last("MEMOIZE")
			if err != nil {
				return err
			}
			s.memoPut(len(s.memo), v)
		default:
			s.pos--
			return s.fail("unknown opcode 0x%02x", op)
		}
	}
}

func (s *scanner) memoOp(get bool, i int) error {
	if get {
		s.push(s.memoGet(i))
		return nil
	}
	if i < 0 {
		return s.fail("negative memo index")
	}
	v, err := s.last("PUT")
	if err != nil {
		return err
	}
	s.memoPut(i, v)
	return nil
}

// refusedGlobalError reports a global that is not on the allow-list.
type refusedGlobalError struct{ name string }

func (e *refusedGlobalError) Error() string {
	return fmt.Sprintf("refused global %s: not on the allow-list of a checkpoint reader (nothing was executed)", e.name)
}
