package remote

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"
)

// outbox sends a connection's messages from its own goroutine, so that the
// code that computes (holding the worker's compute lock) only queues them
// and never waits on the network. The queue holds at most limit bytes: a
// sender waits for room only while the writer makes progress, and a client
// that takes no bytes for the write timeout is dropped, which releases any
// waiting sender at once (docs/safety.md).
type outbox struct {
	w       io.Writer
	limit   int
	timeout time.Duration // per chunk written; 0: none (pipes)
	onFail  func()        // called once when writing fails (closes the connection)

	mu     sync.Mutex
	cond   *sync.Cond
	q      [][]byte
	queued int
	err    error // sticky: the first failure
	closed bool  // no more messages; the writer ends once the queue is empty
	done   chan struct{}
}

// writeChunk is the most bytes written under one deadline.
const writeChunk = 64 << 10

func newOutbox(w io.Writer, limit int, timeout time.Duration, onFail func()) *outbox {
	o := &outbox{w: w, limit: limit, timeout: timeout, onFail: onFail, done: make(chan struct{})}
	o.cond = sync.NewCond(&o.mu)
	go o.run()
	return o
}

// send queues one message. It fails once the connection has failed.
func (o *outbox) send(t msgType, payload []byte) error {
	if len(payload)+1 > MaxMessage {
		return protoErr("%s message of %d bytes exceeds the limit of %d", t, len(payload)+1, MaxMessage)
	}
	frame := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(frame[:4], uint32(len(payload)+1))
	frame[4] = byte(t)
	frame = append(frame, payload...)
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.err == nil && !o.closed && o.queued > 0 && o.queued+len(frame) > o.limit {
		o.cond.Wait()
	}
	if o.err != nil {
		return o.err
	}
	if o.closed {
		return errors.New("connection closing")
	}
	o.q = append(o.q, frame)
	o.queued += len(frame)
	o.cond.Broadcast()
	return nil
}

// failed returns the first write failure, if any.
func (o *outbox) failed() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// fail records err (the first one sticks) and wakes everyone.
func (o *outbox) fail(err error) {
	o.mu.Lock()
	first := o.err == nil
	if first {
		o.err = err
	}
	o.cond.Broadcast()
	o.mu.Unlock()
	if first && o.onFail != nil {
		o.onFail()
	}
}

// close lets the writer send what is queued and waits for it at most wait.
func (o *outbox) close(wait time.Duration) {
	o.mu.Lock()
	o.closed = true
	o.cond.Broadcast()
	o.mu.Unlock()
	select {
	case <-o.done:
	case <-time.After(wait):
		o.fail(errors.New("connection closed with messages unsent"))
	}
}

func (o *outbox) run() {
	defer close(o.done)
	dl, _ := o.w.(interface{ SetWriteDeadline(time.Time) error })
	for {
		o.mu.Lock()
		for len(o.q) == 0 && o.err == nil && !o.closed {
			o.cond.Wait()
		}
		if o.err != nil || len(o.q) == 0 {
			o.mu.Unlock()
			return
		}
		frame := o.q[0]
		o.q[0] = nil
		o.q = o.q[1:]
		o.mu.Unlock()
		for off := 0; off < len(frame); {
			end := min(off+writeChunk, len(frame))
			if dl != nil && o.timeout > 0 {
				_ = dl.SetWriteDeadline(time.Now().Add(o.timeout))
			}
			n, err := o.w.Write(frame[off:end])
			if err != nil {
				o.fail(err)
				return
			}
			off += n
		}
		o.mu.Lock()
		o.queued -= len(frame)
		o.cond.Broadcast()
		o.mu.Unlock()
	}
}
