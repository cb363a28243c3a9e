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
