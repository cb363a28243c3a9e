package resp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadCommand(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		err  error
	}{
		{"set", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n", []string{"SET", "k", "hello"}, nil},
		{"empty arg", "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", []string{"GET", ""}, nil},
		{"binary", "*1\r\n$4\r\n\r\n\x00\xff\r\n", []string{"\r\n\x00\xff"}, nil},
		{"inline", "PING\r\n", nil, ErrProtocol},
		{"zero array", "*0\r\n", nil, ErrProtocol},
		{"null array", "*-1\r\n", nil, ErrProtocol},
		{"integer element", "*1\r\n:1\r\n", nil, ErrProtocol},
		{"null bulk", "*1\r\n$-1\r\n", nil, ErrProtocol},
		{"bad length", "*1\r\n$x\r\n", nil, ErrProtocol},
		{"no LF", "*1\r\n$1\rxa\r\n", nil, ErrProtocol},
		{"bad terminator", "*1\r\n$1\r\nab\r\n", nil, ErrProtocol},
		{"too many", "*1025\r\n", nil, ErrTooManyArgs},
		{"too large", "*1\r\n$8388609\r\n", nil, ErrArgTooLarge},
		{"huge number", "*99999999999999999999\r\n", nil, ErrProtocol},
		{"truncated", "*2\r\n$3\r\nGET\r\n", nil, io.ErrUnexpectedEOF},
		{"eof", "", nil, io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time proves incremental parsing.
			r := NewReader(iotest.OneByteReader(strings.NewReader(tc.in)))
			args, err := r.ReadCommand()
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(args) != len(tc.want) {
				t.Fatalf("got %d args, want %d", len(args), len(tc.want))
			}
			for i := range args {
				if string(args[i]) != tc.want[i] {
					t.Errorf("arg %d = %q, want %q", i, args[i], tc.want[i])
				}
			}
		})
	}
}

func TestPipelineAndBuffered(t *testing.T) {
	var in bytes.Buffer
	w := NewWriter(&in)
	for i := 0; i < 100; i++ {
		w.Command([]byte("SET"), []byte{byte(i)}, bytes.Repeat([]byte{'v'}, i*100))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&in)
	if _, ok, err := r.Next(); ok || err != nil {
		t.Fatalf("Next on an empty buffer: %v %v", ok, err)
	}
	for i := 0; i < 100; i++ {
		args, ok, err := r.Next()
		if !ok && err == nil {
			args, err = r.ReadCommand()
		}
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if len(args) != 3 || args[1][0] != byte(i) || len(args[2]) != i*100 {
			t.Fatalf("command %d mismatch", i)
		}
	}
	if r.Buffered() != 0 {
		t.Fatalf("buffered = %d after last command", r.Buffered())
	}
	if _, err := r.ReadCommand(); err != io.EOF {
		t.Fatalf("err = %v, want EOF", err)
	}
}

func TestLargeArgument(t *testing.T) {
	var in bytes.Buffer
	w := NewWriter(&in)
	big := bytes.Repeat([]byte("x"), MaxArgSize)
	w.Command([]byte("SET"), []byte("k"), big)
	w.Command([]byte("PING"))
	w.Flush()
	r := NewReader(&in)
	args, err := r.ReadCommand()
	if err != nil || !bytes.Equal(args[2], big) {
		t.Fatalf("large arg: %v", err)
	}
	args, err = r.ReadCommand()
	if err != nil || string(args[0]) != "PING" {
		t.Fatalf("after large arg: %v %q", err, args)
	}
}

func TestWriterAndReadValue(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Simple("OK")
	w.Error("Key not found")
	w.Int(-42)
	w.Bulk([]byte("a\r\nb"))
	w.Nil()
	w.Array(2)
	w.BulkString("x")
	w.Array(0)
	w.BulkHeader(3)
	copy(w.Grow(3), "abc")
	w.BulkEnd()
	n := w.Len()
	w.BulkHeader(10)
	w.Truncate(n)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := []string{`"OK"`, `ERR(Key not found)`, `-42`, `"a\r\nb"`, `(nil)`, `["x" []]`, `"abc"`}
	r := NewReader(iotest.HalfReader(&b))
	for i, s := range want {
		v, err := r.ReadValue()
		if err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
		if v.String() != s {
			t.Errorf("value %d = %s, want %s", i, v, s)
		}
	}
	if _, err := r.ReadValue(); err != io.EOF {
		t.Fatalf("err = %v, want EOF", err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"))
	f.Add([]byte("*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n"))
	f.Add([]byte("*1\r\n$-1\r\n"))
	f.Add([]byte("+OK\r\n-ERR x\r\n:12\r\n$-1\r\n*2\r\n$1\r\na\r\n*-1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		// Requests: whatever is parsed must re-encode to the bytes consumed.
		r := NewReader(bytes.NewReader(in))
		var out bytes.Buffer
		w := NewWriter(&out)
		for {
			args, err := r.ReadCommand()
			if err != nil {
				break
			}
			if len(args) == 0 || len(args) > MaxArgs {
				t.Fatalf("bad arg count %d", len(args))
			}
			w.Command(args...)
		}
		if !bytes.HasPrefix(in, w.Bytes()) {
			t.Fatalf("re-encoding is not a prefix of the input")
		}
		// Replies: must never panic, and parse → write → parse is stable.
		r = NewReader(bytes.NewReader(in))
		for i := 0; i < 100; i++ {
			v, err := r.ReadValue()
			if err != nil {
				break
			}
			var b bytes.Buffer
			w := NewWriter(&b)
			writeValue(w, v)
			w.Flush()
			v2, err := NewReader(&b).ReadValue()
			if err != nil || v2.String() != v.String() {
				t.Fatalf("round trip %s -> %s (%v)", v, v2, err)
			}
		}
	})
}

func writeValue(w *Writer, v Value) {
	switch {
	case v.Kind == KindArray && v.Null:
		w.Raw([]byte("*-1\r\n"))
	case v.Null:
		w.Nil()
	case v.Kind == KindSimple:
		w.Simple(string(v.Str))
	case v.Kind == KindError:
		w.Error(string(v.Str))
	case v.Kind == KindInteger:
		w.Int(v.Int)
	case v.Kind == KindBulk:
		w.Bulk(v.Str)
	case v.Kind == KindArray:
		w.Array(len(v.Array))
		for _, e := range v.Array {
			writeValue(w, e)
		}
	}
}

// chunkSource hands out its input in pieces of the given sizes, with
// ErrWouldBlock between them, as a non-blocking socket does.
type chunkSource struct {
	in    []byte
	sizes []byte
	dry   bool // the next read finds nothing
}

func (s *chunkSource) Read(p []byte) (int, error) {
	if s.dry {
		s.dry = false
		return 0, ErrWouldBlock
	}
	if len(s.in) == 0 {
		return 0, io.EOF
	}
	n := len(s.in)
	if len(s.sizes) > 0 {
		n = min(n, int(s.sizes[0])+1)
		s.sizes = s.sizes[1:]
	}
	n = copy(p, s.in[:n])
	s.in = s.in[n:]
	s.dry = true
	return n, nil
}

// FuzzFillNext: a server loop reading a non-blocking source with Fill and
// parsing with Next gets the same requests, in order, as ReadCommand on the
// whole input, however the input is cut up; ErrWouldBlock never sticks.
func FuzzFillNext(f *testing.F) {
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n"), []byte{0, 3, 7, 1})
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$20\r\n01234567890123456789\r\n"), []byte{2})
	f.Fuzz(func(t *testing.T, in, sizes []byte) {
		var want [][]byte
		r := NewReader(bytes.NewReader(in))
		var wantErr error
		for {
			args, err := r.ReadCommand()
			if err != nil {
				wantErr = err
				break
			}
			w := NewWriter(io.Discard)
			w.Command(args...)
			want = append(want, bytes.Clone(w.Bytes()))
		}

		r = NewReader(&chunkSource{in: in, sizes: sizes})
		var got [][]byte
		var gotErr error
		for gotErr == nil {
			err := r.Fill()
			if err == ErrWouldBlock {
				continue
			}
			if err != nil {
				gotErr = err
				if r.Buffered() == 0 {
					break
				}
			}
			for {
				args, ok, err := r.Next()
				if err != nil {
					gotErr = err
					break
				}
				if !ok {
					break
				}
				w := NewWriter(io.Discard)
				w.Command(args...)
				got = append(got, bytes.Clone(w.Bytes()))
			}
			if gotErr != nil {
				break
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d requests through Fill and Next, %d through ReadCommand", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("request %d: %q, want %q", i, got[i], want[i])
			}
		}
		// A malformed input fails the same way; a clean or cut end is an
		// end of stream either way.
		if malformed(wantErr) != malformed(gotErr) {
			t.Fatalf("error %v through Fill and Next, %v through ReadCommand", gotErr, wantErr)
		}
	})
}

func malformed(err error) bool {
	return errors.Is(err, ErrProtocol) || errors.Is(err, ErrTooManyArgs) || errors.Is(err, ErrArgTooLarge)
}

func TestWriterSent(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	w.Simple("OK")
	w.Int(42)
	all := string(w.Bytes())
	w.Sent(3)
	if string(w.Bytes()) != all[3:] {
		t.Fatalf("after Sent(3): %q, want %q", w.Bytes(), all[3:])
	}
	w.Sent(w.Len())
	if w.Len() != 0 {
		t.Fatalf("after sending all: %d bytes left", w.Len())
	}
	w.Simple("again")
	w.Flush()
	if out.String() != "+again\r\n" {
		t.Fatalf("flushed %q", out.String())
	}
}

// TestPeek: Peek shows the buffered complete requests in order without
// consuming them, stops when asked, and leaves the args of the last Next
// intact.
func TestPeek(t *testing.T) {
	in := "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n*2\r\n$3\r\nGET\r\n$1\r\nc\r\n*2\r\n$3\r\nGET\r\n$1"
	r := NewReader(strings.NewReader(in))
	if err := r.Fill(); err != nil {
		t.Fatal(err)
	}
	first, ok, err := r.Next()
	if !ok || err != nil || string(first[1]) != "a" {
		t.Fatalf("Next = %q %v %v", first, ok, err)
	}
	var seen []string
	r.Peek(func(args [][]byte) bool {
		seen = append(seen, string(args[1]))
		return true
	})
	if strings.Join(seen, ",") != "b,c" {
		t.Fatalf("Peek saw %v, want b,c (the incomplete last request is not shown)", seen)
	}
	seen = nil
	r.Peek(func(args [][]byte) bool {
		seen = append(seen, string(args[1]))
		return false
	})
	if strings.Join(seen, ",") != "b" {
		t.Fatalf("Peek after false saw %v, want b", seen)
	}
	if string(first[0]) != "GET" || string(first[1]) != "a" {
		t.Fatalf("args of the last Next changed by Peek: %q", first)
	}
	for _, want := range []string{"b", "c"} {
		args, ok, err := r.Next()
		if !ok || err != nil || string(args[1]) != want {
			t.Fatalf("Next after Peek = %q %v %v, want %s", args, ok, err, want)
		}
	}
	if _, ok, _ := r.Next(); ok {
		t.Fatal("the incomplete request parsed")
	}
}
