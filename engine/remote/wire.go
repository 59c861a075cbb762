// Package remote runs the engine as a separate process: `geca worker` serves
// sampling runs and denoiser calls over a pipe (stdin/stdout of a child
// process) or a TCP connection, and Client drives it from the viewer or the
// command line with the same operations as engine/sample.
//
// The GPU engine lives in its own binary (the CUDA driver bindings end the
// process when no GPU is present), so running it as a worker makes a missing
// or failing GPU an error message instead of a crash, and lets a laptop drive
// a GPU machine on the network.
//
// The protocol carries commands, weights, grids and frames, never code. Each
// message is a 4-byte big-endian length, a type byte and a payload of
// fixed-layout little-endian fields; every length inside a payload is checked
// against what is left of the message before anything is allocated, and a
// message may not exceed MaxMessage bytes (4 KiB before the peer has
// authenticated). A connection starts with the client's hello (magic, protocol
// version, token) and the worker's welcome; a worker listening on a network
// address requires the token and refuses any other peer.
package remote

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// Version is the protocol version; client and worker must agree.
const Version = 3 // 3: sample.Options.ClipX0

// Magic opens every hello.
const Magic = "GECA-WORKER"

// Limits of the protocol.
const (
	MaxMessage    = 64 << 20 // bytes of one message after the handshake
	maxHello      = 4 << 10  // bytes of a message before authentication
	MaxModelBytes = 8 << 30  // float32 weights of one uploaded model
	maxTensors    = 1024     // tensors of one uploaded model
	maxSamplers   = 256      // open samplers of one connection
	maxDims       = 8        // dimensions of one tensor
)

// msgType is the first byte of a message.
type msgType byte

const (
	tHello      msgType = 1 + iota // client → worker: magic, version, token
	tWelcome                       // worker → client: version, worker and device description
	tError                         // worker → client: a failed request
	tOK                            // worker → client: done, nothing to return
	tHeartbeat                     // worker → client: still working
	tCancel                        // client → worker: stop the running request
	tModelQuery                    // client → worker: is a model with this hash loaded?
	tLoadModel                     // client → worker: config and tensor count; tensors follow
	tTensor                        // client → worker: one tensor of an upload
	tModel                         // worker → client: model id (or not found)
	tNewSampler                    // client → worker: options → tSampler
	tSampler                       // worker → client: sampler info and status
	tBranch                        // client → worker: copy a sampler → tSampler
	tClose                         // client → worker: drop a sampler (no reply)
	tStep                          // client → worker: step/run/rewind → frames, tStatus
	tFrame                         // worker → client: one frame
	tStatus                        // worker → client: the sampler's position and settings
	tSet                           // client → worker: change a setting → tStatus
	tSetState                      // client → worker: replace the grids → tStatus
	tCurrent                       // client → worker: the frame at the position → tFrame
	tResult                        // client → worker: the final samples → tData
	tData                          // worker → client: float32 values
	tCall                          // client → worker: one denoiser call on a grid → tGrid
	tGrid                          // worker → client: a grid
	tCurFrame                      // worker → client: the frame at the position after a step
	tLast                          // (end of the types)
)

var msgNames = [...]string{
	tHello: "hello", tWelcome: "welcome", tError: "error", tOK: "ok", tHeartbeat: "heartbeat",
	tCancel: "cancel", tModelQuery: "model query", tLoadModel: "load model", tTensor: "tensor",
	tModel: "model", tNewSampler: "new sampler", tSampler: "sampler", tBranch: "branch",
	tClose: "close", tStep: "step", tFrame: "frame", tStatus: "status", tSet: "set",
	tSetState: "set state", tCurrent: "current", tResult: "result", tData: "data",
	tCall: "call", tGrid: "grid", tCurFrame: "current frame",
}

func (t msgType) String() string {
	if t > 0 && t < tLast {
		return msgNames[t]
	}
	return fmt.Sprintf("type %d", byte(t))
}

// ProtocolError is a malformed or unexpected message.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "protocol: " + e.Msg }

func protoErr(format string, a ...any) error {
	return &ProtocolError{fmt.Sprintf(format, a...)}
}

// writeMsg writes one message.
func writeMsg(w io.Writer, t msgType, payload []byte) error {
	if len(payload)+1 > MaxMessage {
		return protoErr("%s message of %d bytes exceeds the limit of %d", t, len(payload)+1, MaxMessage)
	}
	var h [5]byte
	binary.BigEndian.PutUint32(h[:4], uint32(len(payload)+1))
	h[4] = byte(t)
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// readMsg reads one message of at most limit bytes (type byte included).
// buf is reused when large enough. The header is returned in the error of a
// message that is not one of ours, for diagnosis (a worker that printed text
// on its output instead of speaking the protocol).
func readMsg(r io.Reader, limit int, buf []byte) (msgType, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, protoErr("connection closed inside a message header")
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	t := msgType(h[4])
	if n == 0 || t == 0 || t >= tLast {
		return 0, nil, &headerError{h}
	}
	if int64(n) > int64(limit) {
		return 0, nil, protoErr("%s message of %d bytes exceeds the limit of %d", t, n, limit)
	}
	size := int(n) - 1
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, protoErr("connection closed inside a %s message of %d bytes", t, size)
		}
		return 0, nil, err
	}
	return t, buf, nil
}

// headerError is a header that no message of the protocol has.
type headerError struct{ h [5]byte }

func (e *headerError) Error() string {
	return fmt.Sprintf("protocol: not a message header: % x %q", e.h[:], printable(e.h[:]))
}

func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 32 || c > 126 {
			c = '.'
		}
		out[i] = c
	}
	return string(out)
}

// ---- payload encoding ------------------------------------------------------------

// enc appends little-endian fields.
type enc struct{ b []byte }

func (e *enc) u8(v uint8)    { e.b = append(e.b, v) }
func (e *enc) u32(v uint32)  { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64)  { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) i32(v int)     { e.u32(uint32(int32(v))) }
func (e *enc) i64(v int64)   { e.u64(uint64(v)) }
func (e *enc) f32(v float32) { e.u32(math.Float32bits(v)) }
func (e *enc) f64(v float64) { e.u64(math.Float64bits(v)) }
func (e *enc) bool(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}
func (e *enc) str(s string) { e.u32(uint32(len(s))); e.b = append(e.b, s...) }

// f32s writes a presence byte (so nil and empty stay apart), a count and the
// values.
func (e *enc) f32s(v []float32) {
	if v == nil {
		e.u8(0)
		return
	}
	e.u8(1)
	e.u32(uint32(len(v)))
	e.b = slices.Grow(e.b, 4*len(v))
	for _, x := range v {
		e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(x))
	}
}

func (e *enc) f64s(v []float64) {
	e.u32(uint32(len(v)))
	for _, x := range v {
		e.f64(x)
	}
}

func (e *enc) ints(v []int) {
	e.u32(uint32(len(v)))
	for _, x := range v {
		e.i32(x)
	}
}

// dec reads fields; the first error sticks and every later read returns
// zero values, so a message is decoded straight through and checked once.
type dec struct {
	b   []byte
	err error
	t   msgType
}

func (d *dec) fail(format string, a ...any) {
	if d.err == nil {
		d.err = protoErr("%s message: %s", d.t, fmt.Sprintf(format, a...))
	}
}

func (d *dec) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("%s needs %d bytes, %d left", what, n, len(d.b))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) u8() uint8 {
	if v := d.take(1, "byte"); v != nil {
		return v[0]
	}
	return 0
}

func (d *dec) u32() uint32 {
	if v := d.take(4, "uint32"); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (d *dec) u64() uint64 {
	if v := d.take(8, "uint64"); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (d *dec) i32() int     { return int(int32(d.u32())) }
func (d *dec) i64() int64   { return int64(d.u64()) }
func (d *dec) f32() float32 { return math.Float32frombits(d.u32()) }
func (d *dec) f64() float64 { return math.Float64frombits(d.u64()) }

func (d *dec) bool() bool {
	switch v := d.u8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("boolean byte %d", v)
		return false
	}
}

// count reads a length of items of size bytes each, checked against what is
// left, so that no allocation exceeds the message.
func (d *dec) count(size int, what string) int {
	n := d.u32()
	if d.err != nil {
		return 0
	}
	if uint64(n)*uint64(size) > uint64(len(d.b)) {
		d.fail("%s of %d items of %d bytes, %d bytes left", what, n, size, len(d.b))
		return 0
	}
	return int(n)
}

func (d *dec) str(max int, what string) string {
	n := d.count(1, what)
	if n > max {
		d.fail("%s of %d bytes exceeds %d", what, n, max)
		return ""
	}
	return string(d.take(n, what))
}

func (d *dec) f32s(what string) []float32 {
	switch p := d.u8(); {
	case d.err != nil:
		return nil
	case p == 0:
		return nil
	case p != 1:
		d.fail("%s: presence byte %d", what, p)
		return nil
	}
	n := d.count(4, what)
	if d.err != nil {
		return nil
	}
	raw := d.take(4*n, what)
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

func (d *dec) f64s(what string) []float64 {
	n := d.count(8, what)
	v := make([]float64, n)
	for i := range v {
		v[i] = d.f64()
	}
	return v
}

func (d *dec) ints(what string) []int {
	n := d.count(4, what)
	v := make([]int, n)
	for i := range v {
		v[i] = d.i32()
	}
	return v
}

// end checks that the whole payload was read.
func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d unexpected bytes at the end", len(d.b))
	}
	return d.err
}
