package remote

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"geca/engine"
	"geca/engine/sample"
)

// payloads lists a fresh value of every message body, by type.
func payloads() map[msgType]func() payload {
	return map[msgType]func() payload{
		tHello: func() payload { return &helloMsg{} }, tWelcome: func() payload { return &welcomeMsg{} },
		tError: func() payload { return &errorMsg{} }, tCancel: func() payload { return &seqMsg{} },
		tModelQuery: func() payload { return &modelQueryMsg{} }, tLoadModel: func() payload { return &loadModelMsg{} },
		tTensor: func() payload { return &tensorMsg{} }, tModel: func() payload { return &modelMsg{} },
		tNewSampler: func() payload { return &newSamplerMsg{} }, tSampler: func() payload { return &samplerMsg{} },
		tBranch: func() payload { return &idMsg{} }, tStep: func() payload { return &stepMsg{} },
		tFrame: func() payload { return &frameMsg{} }, tStatus: func() payload { return &statusMsg{} },
		tSet: func() payload { return &setMsg{} }, tSetState: func() payload { return &setStateMsg{} },
		tData: func() payload { return &dataMsg{} }, tCall: func() payload { return &callMsg{} },
		tGrid: func() payload { return &gridMsg{} }, tCurFrame: func() payload { return &frameMsg{} },
	}
}

// seeds are valid messages of each kind, for the fuzzer to start from.
func seeds() [][]byte {
	st := &engine.State{B: 1, H: 2, W: 2, C: 3, Data: make([]float32, 12)}
	msgs := []struct {
		t msgType
		p payload
	}{
		{tHello, &helloMsg{Magic: Magic, Version: Version, Token: "t"}},
		{tTensor, &tensorMsg{Name: "w", Shape: []int{2, 3}, Data: make([]float32, 6)}},
		{tNewSampler, &newSamplerMsg{Model: 1, Opt: sample.Options{Steps: "50", Labels: [][]float32{{1, 0}}, N: 2}}},
		{tSampler, &samplerMsg{ID: 1, N: 1, Timesteps: []int{1, 2}, Sigma: []float64{0.1, 0.2}}},
		{tFrame, &frameMsg{&sample.Frame{State: st, Xt: []float32{1}, Attn: []float32{}}}},
		{tCall, &callMsg{Model: 1, State: st, T: []int{3}, Y: [][]float32{{1}}, M: 2, Rate: 0.5, Masks: []float32{1, 0}}},
		{tStep, &stepMsg{ID: 1, Kind: stepRunTo, Arg: -1}},
		{tSet, &setMsg{ID: 1, Key: setWatch, A: 1}},
		{tStatus, &statusMsg{Index: 3, OpErr: "x"}},
	}
	var out [][]byte
	for _, m := range msgs {
		out = append(out, append([]byte{byte(m.t)}, encode(m.p)...))
	}
	return out
}

// Every message body decodes without panicking or allocating beyond the
// message, and what decodes re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	mk := payloads()
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		typ := msgType(b[0])
		newP, ok := mk[typ]
		if !ok {
			return
		}
		p := newP()
		if err := decode(typ, b[1:], p); err != nil {
			return
		}
		if typ == tFrame || typ == tCurFrame || typ == tStep || typ == tHello || typ == tError || typ == tStatus || typ == tSampler || typ == tModel || typ == tNewSampler || typ == tCall {
			// bools and f32 NaN payloads may not round-trip byte for byte; decoding again must agree
			q := newP()
			if err := decode(typ, encode(p), q); err != nil {
				t.Fatalf("%s: re-encoded message does not decode: %v", typ, err)
			}
			return
		}
		if got := encode(p); !bytes.Equal(got, b[1:]) {
			t.Fatalf("%s: re-encoding differs:\n% x\n% x", typ, got, b[1:])
		}
	})
}

// A worker fed arbitrary bytes after a valid hello answers or hangs up, and
// never panics.
func FuzzServerConn(f *testing.F) {
	for _, s := range seeds() {
		var buf bytes.Buffer
		writeMsg(&buf, msgType(s[0]), s[1:])
		f.Add(buf.Bytes())
	}
	var hello bytes.Buffer
	writeMsg(&hello, tHello, encode(&helloMsg{Magic: Magic, Version: Version}))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, z := net.Pipe()
		s := &Server{HandshakeTimeout: time.Second}
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ServeConn(context.Background(), a)
		}()
		go func() {
			// drain answers
			buf := make([]byte, 1<<16)
			for {
				if _, err := z.Read(buf); err != nil {
					return
				}
			}
		}()
		z.SetDeadline(time.Now().Add(2 * time.Second))
		z.Write(hello.Bytes())
		z.Write(b)
		z.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("worker did not end after its client left")
		}
	})
}

func TestReadMsgLimits(t *testing.T) {
	for ci, tc := range []struct {
		in   []byte
		want string
	}{
		{[]byte{0, 0, 0, 0, 1}, "not a message header"},
		{[]byte{0, 0, 0, 5, 99}, "not a message header"},
		{[]byte{0, 0, 0x10, 1, byte(tHello)}, "exceeds the limit"},
		{[]byte{0, 0, 0, 9, byte(tHello), 1, 2}, "connection closed inside a hello message"},
		{[]byte{0, 0}, "inside a message header"},
	} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			_, _, err := readMsg(bytes.NewReader(tc.in), maxHello, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("% x: %v, want %q", tc.in, err, tc.want)
			}
		})
	}
	// Claimed counts larger than the message are refused before allocating.
	var e enc
	e.u8(1)
	e.u32(1 << 30)
	if err := decode(tData, e.b, &dataMsg{}); err == nil || !strings.Contains(err.Error(), "bytes left") {
		t.Fatalf("huge count: %v", err)
	}
}

// A worker that stops answering (no heartbeat) is given up after the
// timeout.
func TestSilentWorker(t *testing.T) {
	a, z := net.Pipe()
	go func() {
		readMsg(z, maxHello, nil)
		writeMsg(z, tWelcome, encode(&welcomeMsg{Version: Version}))
		readMsg(z, MaxMessage, nil) // the request, never answered
		time.Sleep(5 * time.Second)
		z.Close()
	}()
	c, err := NewClient(a, Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.LoadModel(testModel(t))
	if err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("silent worker: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}
