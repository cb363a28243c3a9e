package main

import (
	"errors"
	"slices"
	"testing"

	"github.com/zosgrid/zos/container"
)

func TestDecodeFlistImageConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		json    string
		want    container.ImageConfig
		invalid bool
	}{
		"zos flist import": {
			json: `{"source":"r/app:1","digest":"sha256:ab","os":"linux","entrypoint":["/bin/sh","-c"],"cmd":["echo hi"],` +
				`"env":["A=1"],"working_dir":"/srv","user":"1000:1000","exposed_ports":["80/tcp"]}`,
			want: container.ImageConfig{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}, Env: []string{"A=1"},
				WorkingDir: "/srv", User: "1000:1000"},
		},
		"OCI config file": {
			json: `{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],"Env":["B=2"],"WorkingDir":"/tmp"}}`,
			want: container.ImageConfig{Cmd: []string{"sh"}, Env: []string{"B=2"}, WorkingDir: "/tmp"},
		},
		"import with a relative workdir": {json: `{"digest":"sha256:ab","cmd":["sh"],"working_dir":"srv"}`, invalid: true},
		"OCI with a bad env":             {json: `{"config":{"Env":["NOVALUE"]}}`, invalid: true},
	} {
		got, err := decodeFlistImageConfig([]byte(tc.json))
		if tc.invalid {
			if !errors.Is(err, container.ErrInvalidConfig) {
				t.Errorf("%s: err %v, want ErrInvalidConfig", name, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got.Entrypoint, tc.want.Entrypoint) || !slices.Equal(got.Cmd, tc.want.Cmd) ||
			!slices.Equal(got.Env, tc.want.Env) || got.WorkingDir != tc.want.WorkingDir || got.User != tc.want.User {
			t.Errorf("%s: got %+v %v, want %+v", name, got, err, tc.want)
		}
	}
}
