package installer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testCA writes a self-signed PEM certificate (and its key) to dir.
func testCA(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestRegistriesConfigFileKeysAreK3sShapeAndExact(t *testing.T) {
	c, err := ParseConfig([]byte(`
registries:
  mirrors:
    docker.io:
      endpoint: ["https://mirror.example.com:5000"]
      rewrite: {"^library/(.*)": "hub/library/$1"}
  configs:
    mirror.example.com:5000:
      auth: {username: puller, password: pw}
      tls: {ca_file: /etc/ssl/mirror-ca.pem}
    "*":
      tls: {insecure_skip_verify: true}
`))
	require.NoError(t, err)
	require.NotNil(t, c.Registries)
	assert.Equal(t, []string{"https://mirror.example.com:5000"}, c.Registries.Mirrors["docker.io"].Endpoints)
	assert.Equal(t, "hub/library/$1", c.Registries.Mirrors["docker.io"].Rewrites["^library/(.*)"])
	assert.Equal(t, "puller", c.Registries.Configs["mirror.example.com:5000"].Auth.Username)
	assert.True(t, c.Registries.Configs["*"].TLS.InsecureSkipVerify)
	require.NoError(t, completed(t, c).Validate())

	for doc, want := range map[string]string{
		"registries: {mirror: {}}":                                    `registries: unknown field "mirror"`,
		"registries: {mirrors: {docker.io: {endpoints: [x]}}}":        `registries.mirrors.docker.io: unknown field "endpoints"`,
		"registries: {mirrors: {docker.io: {Endpoint: [x]}}}":         `unknown field "Endpoint"`,
		"registries: {configs: {h: {auth: {identityToken: x}}}}":      `registries.configs.h.auth: unknown field "identityToken"`,
		"registries: {configs: {h: {tls: {caFile: /x}}}}":             `registries.configs.h.tls: unknown field "caFile"`,
		"registries: {configs: {h: {auth: {username: u}, tlss: {}}}}": `unknown field "tlss"`,
		"registries: [a]": "registries: must be a mapping",
		"registries: {mirrors: {docker.io: {endpoint: https://m:1/x}}}": "cannot unmarshal",
	} {
		_, err := ParseConfig([]byte(doc))
		require.Error(t, err, doc)
		assert.Contains(t, err.Error(), want, doc)
	}
	c, err = ParseConfig([]byte("registries: {}\n"))
	require.NoError(t, err)
	assert.Nil(t, c.Registries, "an empty registries key is no registries")
}

func TestRegistriesValidation(t *testing.T) {
	const secret = "Never-Shown-3f1"
	ca := "/etc/ssl/ca.pem"
	for name, tc := range map[string]struct {
		r    Registries
		want string
	}{
		"bad mirror host": {Registries{Mirrors: map[string]RegistryMirror{"Docker.IO": {Endpoints: []string{"https://m"}}}}, `registries.mirrors: "Docker.IO" is not a registry host`},
		"bad port":        {Registries{Mirrors: map[string]RegistryMirror{"r.example:99999": {Endpoints: []string{"https://m"}}}}, "has an invalid port"},
		"no endpoint":     {Registries{Mirrors: map[string]RegistryMirror{"docker.io": {}}}, "registries.mirrors.docker.io: names no endpoint"},
		"ftp endpoint":    {Registries{Mirrors: map[string]RegistryMirror{"docker.io": {Endpoints: []string{"ftp://m"}}}}, "must be an http:// or https:// URL"},
		"no scheme":       {Registries{Mirrors: map[string]RegistryMirror{"docker.io": {Endpoints: []string{"mirror.example.com"}}}}, "must be an http:// or https:// URL"},
		"user in url":     {Registries{Mirrors: map[string]RegistryMirror{"docker.io": {Endpoints: []string{"https://u:" + secret + "@m"}}}}, "must not hold credentials"},
		"bad rewrite":     {Registries{Mirrors: map[string]RegistryMirror{"docker.io": {Endpoints: []string{"https://m"}, Rewrites: map[string]string{"(": "x"}}}}, "is not a regular expression"},
		"bad config host": {Registries{Configs: map[string]RegistryConfig{"a b": {TLS: &RegistryTLS{InsecureSkipVerify: true}}}}, `registries.configs: "a b" is not a registry host`},
		"empty config":    {Registries{Configs: map[string]RegistryConfig{"r.example": {}}}, "sets neither auth nor tls"},
		"user no password": {Registries{Configs: map[string]RegistryConfig{"r.example": {Auth: &RegistryAuth{Username: "u"}}}},
			"has a username and no password (give it with --registry-password-file r.example=FILE or TPCTL_REGISTRY_PASSWORD_R_EXAMPLE)"},
		"password no user": {Registries{Configs: map[string]RegistryConfig{"r.example": {Auth: &RegistryAuth{Password: secret}}}}, "has a password and no username"},
		"bad auth":         {Registries{Configs: map[string]RegistryConfig{"r.example": {Auth: &RegistryAuth{Auth: secret}}}}, "must be base64 of username:password"},
		"relative ca":      {Registries{Configs: map[string]RegistryConfig{"r.example": {TLS: &RegistryTLS{CAFile: "ca.pem"}}}}, "must be a clean absolute path"},
		"own copy":         {Registries{Configs: map[string]RegistryConfig{"r.example": {TLS: &RegistryTLS{CAFile: RegistryCertsDir + "/r.example/ca.crt"}}}}, "where tpctl keeps its own copies"},
		"cert no key":      {Registries{Configs: map[string]RegistryConfig{"r.example": {TLS: &RegistryTLS{CertFile: ca}}}}, "cert_file and key_file go together"},
		"ca and insecure":  {Registries{Configs: map[string]RegistryConfig{"r.example": {TLS: &RegistryTLS{CAFile: ca, InsecureSkipVerify: true}}}}, "insecure_skip_verify makes ca_file pointless"},
	} {
		c := completed(t, Config{Registries: &tc.r})
		err := c.Validate()
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), tc.want, name)
		assert.NotContains(t, err.Error(), secret, name)
	}
	for _, h := range []string{"docker.io", "localhost:5000", "10.0.0.1:5000", "[fd00::1]:5000", "[fd00::1]", "*"} {
		assert.Empty(t, registryHostProblem(h), h)
	}
	for _, h := range []string{"", "fd00::1", "a_b", "host:", "host:0", "host:05", "http://host", "-x.example"} {
		assert.NotEmpty(t, registryHostProblem(h), h)
	}
	assert.Equal(t, "TPCTL_REGISTRY_PASSWORD_REGISTRY_EXAMPLE_COM_5000", RegistryPasswordEnv("registry.example.com:5000"))
}

func TestRegistryFlags(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testCA(t, dir, "ca")
	pwFile := writeTemp(t, "pw", "file-pw\n")
	env := envOf(map[string]string{"TPCTL_REGISTRY_PASSWORD_GHCR_IO": "env-pw", "TPCTL_REGISTRY_PASSWORD_MIRROR_EXAMPLE_COM_5000": "ignored: the file wins"})
	c, _, err := loadWith(t, env,
		"--registry-mirror", "docker.io=https://mirror.example.com:5000",
		"--registry-mirror", "docker.io=http://10.0.0.9:5000/v2/hub",
		"--registry-mirror", "*=https://mirror.example.com:5000",
		"--registry-ca", "mirror.example.com:5000="+ca,
		"--registry-auth", "mirror.example.com:5000=puller",
		"--registry-password-file", "mirror.example.com:5000="+pwFile,
		"--registry-auth", "ghcr.io=bot")
	require.NoError(t, err)
	r := c.Registries
	require.NotNil(t, r)
	assert.Equal(t, []string{"https://mirror.example.com:5000", "http://10.0.0.9:5000/v2/hub"}, r.Mirrors["docker.io"].Endpoints, "in the order given")
	assert.Equal(t, []string{"https://mirror.example.com:5000"}, r.Mirrors["*"].Endpoints)
	assert.Equal(t, RegistryConfig{Auth: &RegistryAuth{Username: "puller", Password: "file-pw"}, TLS: &RegistryTLS{CAFile: ca}}, r.Configs["mirror.example.com:5000"])
	assert.Equal(t, &RegistryAuth{Username: "bot", Password: "env-pw"}, r.Configs["ghcr.io"].Auth)

	// Flags override the configuration file's entry of the same registry and keep the others.
	file := writeTemp(t, "install.yaml", `registries:
  mirrors:
    docker.io: {endpoint: ["https://old.example"], rewrite: {"^a/(.*)": "b/$1"}}
    quay.io: {endpoint: ["https://quay-mirror.example"]}
  configs:
    quay-mirror.example: {auth: {username: q}}
`)
	c, _, err = loadWith(t, noEnv, "--config", file, "--registry-mirror", "docker.io=https://new.example",
		"--registry-password-file", "quay-mirror.example="+pwFile)
	require.NoError(t, err)
	assert.Equal(t, RegistryMirror{Endpoints: []string{"https://new.example"}, Rewrites: map[string]string{"^a/(.*)": "b/$1"}}, c.Registries.Mirrors["docker.io"])
	assert.Equal(t, []string{"https://quay-mirror.example"}, c.Registries.Mirrors["quay.io"].Endpoints)
	assert.Equal(t, &RegistryAuth{Username: "q", Password: "file-pw"}, c.Registries.Configs["quay-mirror.example"].Auth)

	notPEM := writeTemp(t, "notpem.crt", "hello\n")
	_, keyOnly := testCA(t, dir, "other")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--registry-mirror", "docker.io"}, `--registry-mirror "docker.io": want HOST=VALUE`},
		{[]string{"--registry-mirror", "docker.io=ftp://m"}, "must be an http:// or https:// URL"},
		{[]string{"--registry-mirror", "Bad Host=https://m"}, `--registry-mirror: "Bad Host" is not a registry host`},
		{[]string{"--registry-ca", "r.example=/nonexistent/ca.pem"}, "registries.configs.r.example.tls.ca_file: \"/nonexistent/ca.pem\" cannot be read: no such file or directory"},
		{[]string{"--registry-ca", "r.example=" + notPEM}, "holds no PEM certificate"},
		{[]string{"--registry-ca", "r.example=" + keyOnly}, "holds a PEM EC PRIVATE KEY, not only certificates"},
		{[]string{"--registry-auth", "r.example=u"}, "--registry-auth r.example: no password: give --registry-password-file r.example=FILE or set TPCTL_REGISTRY_PASSWORD_R_EXAMPLE"},
		{[]string{"--registry-password-file", "r.example=" + pwFile}, "no user for r.example"},
		{[]string{"--registry-auth", "r.example=u", "--registry-password-file", "r.example=/nonexistent/pw"}, "--registry-password-file r.example"},
		{[]string{"--registry-auth", "r.example=u", "--registry-password-file", "r.example=" + writeTemp(t, "two", "a\nb\n")}, "must hold the password on one line"},
		{[]string{"--registry-auth", "r.example=u", "--registry-auth", "r.example=v"}, "r.example is given twice"},
	} {
		_, _, err := loadWith(t, noEnv, tc.args...)
		require.Error(t, err, tc.args)
		assert.Contains(t, err.Error(), tc.want, tc.args)
		assert.NotContains(t, err.Error(), "file-pw")
	}
}

// registryConfig is a configuration with a mirror, credentials and a CA.
func registryConfig(t *testing.T, password string) (Config, string) {
	t.Helper()
	ca, _ := testCA(t, t.TempDir(), "mirror-ca")
	return Config{Registries: &Registries{
		Mirrors: map[string]RegistryMirror{
			"docker.io":       {Endpoints: []string{"https://mirror.example.com:5000"}},
			"cr.fluentbit.io": {Endpoints: []string{"https://mirror.example.com:5000"}, Rewrites: map[string]string{"^fluent/(.*)": "fluentbit/$1"}},
		},
		Configs: map[string]RegistryConfig{
			"mirror.example.com:5000": {Auth: &RegistryAuth{Username: "puller", Password: password}, TLS: &RegistryTLS{CAFile: ca}},
		},
	}}, ca
}

func TestRegistriesRenderGolden(t *testing.T) {
	c, _ := registryConfig(t, "Real-Password-1")
	b, err := RenderRegistries(c.Registries)
	require.NoError(t, err)
	golden(t, "registries.yaml", b)

	ti := newTestInstall(t, c)
	plan, _, err := NewInstallPlan(context.Background(), ti.opts)
	require.NoError(t, err)
	dry := DryRun(context.Background(), plan)
	var files []FilePreview
	for _, s := range dry.Steps {
		if s.Name == "write registries" {
			files = s.Files
			assert.Contains(t, s.Description, "mirror cr.fluentbit.io → https://mirror.example.com:5000; mirror docker.io → https://mirror.example.com:5000; mirror.example.com:5000: credentials, CA")
		}
	}
	require.Len(t, files, 2)
	assert.Equal(t, RegistryCertsDir+"/mirror.example.com:5000/ca.crt", files[0].Path)
	assert.NotEmpty(t, files[0].SHA256)
	assert.Equal(t, RegistriesPath, files[1].Path)
	assert.Equal(t, os.FileMode(0o600), files[1].Mode)
	golden(t, "registries-dryrun.yaml", []byte(files[1].Content))
	assert.NotContains(t, files[1].Content, "Real-Password-1")
	assert.Equal(t, strings.Replace(string(b), "Real-Password-1", "xxxxx", 1), files[1].Content, "the preview is the file, password redacted")
}

func createdKinds(t *testing.T, ti *testInstall) map[string]string {
	t.Helper()
	raw, _ := ti.read(t, StatePath)
	var st State
	require.NoError(t, json.Unmarshal([]byte(raw), &st))
	out := map[string]string{}
	for _, c := range st.Created {
		if c.Path == RegistriesPath || inside(c.Path, RegistryCertsDir) {
			out[c.Path] = c.Kind
			assert.False(t, c.Pending, c.Path)
		}
	}
	return out
}

func TestInstallWritesRegistriesRecordedAndRestartsOnChange(t *testing.T) {
	c, ca := registryConfig(t, "pw-1")
	ti := newTestInstall(t, c)
	rec, err := ti.run(t)
	require.NoError(t, err)
	assert.Contains(t, rec.of(EventDone), "write registries")
	body, mode := ti.read(t, RegistriesPath)
	assert.Equal(t, os.FileMode(0o600), mode, "registries.yaml holds credentials")
	assert.Contains(t, body, "password: pw-1")
	caPath := RegistryCertsDir + "/mirror.example.com:5000/ca.crt"
	assert.Contains(t, body, "ca_file: "+caPath)
	copied, mode := ti.read(t, caPath)
	assert.Equal(t, os.FileMode(0o644), mode)
	orig, _ := os.ReadFile(ca)
	assert.Equal(t, string(orig), copied)
	assert.Equal(t, map[string]string{
		RegistriesPath:   KindFile,
		RegistryCertsDir: KindDir,
		RegistryCertsDir + "/mirror.example.com:5000": KindDir,
		caPath: KindFile,
	}, createdKinds(t, ti), "every path is recorded for uninstall")
	st, _ := ti.read(t, StatePath)
	assert.NotContains(t, st, "pw-1")
	assert.Equal(t, []string{"reload", "enable+start"}, ti.k3s.Calls())

	// The same configuration again: nothing changes, no restart.
	stateBefore, _ := ti.read(t, StatePath)
	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Empty(t, rec.of(EventDone))
	assert.Contains(t, rec.of(EventSkipped), "write registries")
	assert.Equal(t, []string{"reload", "enable+start"}, ti.k3s.Calls())
	stateAfter, _ := ti.read(t, StatePath)
	assert.Equal(t, stateBefore, stateAfter)

	// A new password: the file changes and K3s restarts (it reads it at start).
	ti.opts.Config.Registries.Configs["mirror.example.com:5000"].Auth.Password = "pw-2"
	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"write registries", "start K3s"}, rec.of(EventDone))
	assert.Equal(t, []string{"reload", "enable+start", "restart"}, ti.k3s.Calls())
	body, _ = ti.read(t, RegistriesPath)
	assert.Contains(t, body, "password: pw-2")

	// A changed CA file is a changed copy: restart again.
	other, _ := testCA(t, t.TempDir(), "other")
	b, err := os.ReadFile(other)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(ca, b, 0o644))
	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"write registries", "start K3s"}, rec.of(EventDone))
	copied, _ = ti.read(t, caPath)
	assert.Equal(t, string(b), copied)
	assert.Len(t, ti.k3s.Calls(), 4)

	// No registries any more: the files tpctl wrote go, K3s restarts.
	ti.opts.Config.Registries = nil
	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"write registries", "start K3s"}, rec.of(EventDone))
	assert.False(t, ti.exists(RegistriesPath))
	assert.False(t, ti.exists(caPath))
	assert.False(t, ti.exists(RegistryCertsDir), "the emptied directories go too")
	assert.Empty(t, createdKinds(t, ti))
	assert.Len(t, ti.k3s.Calls(), 5)
	rec, err = ti.run(t)
	require.NoError(t, err)
	assert.Empty(t, rec.of(EventDone))
	assert.NotContains(t, rec.of(EventSkipped), "write registries", "without registries the step is left out")
}

func (ti *testInstall) exists(p string) bool {
	_, err := os.Lstat(filepath.Join(ti.root, p))
	return err == nil
}

func TestInstallRefusesForeignRegistriesFile(t *testing.T) {
	c, _ := registryConfig(t, "pw")
	ti := newTestInstall(t, c)
	p := filepath.Join(ti.root, RegistriesPath)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte("mirrors: {}\n"), 0o600))
	_, err := ti.run(t)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exists and was not written by tpctl")
	b, _ := os.ReadFile(p)
	assert.Equal(t, "mirrors: {}\n", string(b), "the user's file is left alone")
	assert.False(t, ti.exists(RegistryCertsDir))
	assert.NotContains(t, ti.k3s.Calls(), "enable+start")
}

func TestInstallWithUnreadableCAWritesNoRegistryFile(t *testing.T) {
	c, ca := registryConfig(t, "pw")
	ti := newTestInstall(t, c)
	require.NoError(t, os.Remove(ca))
	_, err := ti.run(t)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot be read")
	assert.False(t, ti.exists(RegistriesPath))
	assert.False(t, ti.exists(RegistryCertsDir))
	assert.Empty(t, ti.k3s.Calls(), "K3s is not started")
}

func TestUninstallRemovesRegistryFiles(t *testing.T) {
	c, _ := registryConfig(t, "pw")
	ti := newTestInstall(t, c)
	host := newFakeHost(t, ti.root)
	_, err := ti.run(t)
	require.NoError(t, err)
	require.True(t, ti.exists(RegistriesPath))
	plan, _, err := NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: host.ops(t)})
	require.NoError(t, err)
	require.NoError(t, Run(context.Background(), plan, &recorder{}))
	assert.False(t, ti.exists(RegistriesPath))
	assert.False(t, ti.exists(RegistryCertsDir))
}

// A registry password given through the environment reaches registries.yaml
// (0600, K3s needs it) and nothing else: not the dry runs of install and
// uninstall, the events (plain and JSON), the install log, the state, the
// printed configuration, nor errors.
func TestRegistryPasswordStaysSecret(t *testing.T) {
	const sentinel = "Sentinel-Reg-Pw-7d2a"
	c, _, err := loadWith(t, envOf(map[string]string{"TPCTL_REGISTRY_PASSWORD_MIRROR_EXAMPLE_COM": sentinel}),
		"--registry-mirror", "docker.io=https://mirror.example.com", "--registry-auth", "mirror.example.com=puller")
	require.NoError(t, err)
	ti := newTestInstall(t, c)
	ti.opts.Config.Registries.Configs["*"] = RegistryConfig{Auth: &RegistryAuth{IdentityToken: sentinel + "-token"}}
	ti.opts.Config.Registries.Configs["other.example"] = RegistryConfig{Auth: &RegistryAuth{Auth: "dTo" + "=" + sentinel}}

	var outputs []string
	plan, _, err := NewInstallPlan(context.Background(), ti.opts)
	require.NoError(t, err)
	js, err := json.Marshal(DryRun(context.Background(), plan))
	require.NoError(t, err)
	outputs = append(outputs, "install dry run: "+string(js))
	printed, err := ti.opts.Config.Redacted().YAML()
	require.NoError(t, err)
	outputs = append(outputs, "printed configuration: "+string(printed))
	// Validation errors name the field, never the value.
	verr := ti.opts.Config.Validate()
	require.Error(t, verr, "other.example's auth is not base64 of user:password")
	outputs = append(outputs, "validation error: "+verr.Error())
	delete(ti.opts.Config.Registries.Configs, "other.example")

	var plain, lines strings.Builder
	log, err := OpenLogFile(filepath.Join(ti.root, LogPath))
	require.NoError(t, err)
	plan, _, err = NewInstallPlan(context.Background(), ti.opts)
	require.NoError(t, err)
	require.NoError(t, Run(context.Background(), plan, Multi(NewPlain(&plain), NewJSONLines(&lines), log)))
	require.NoError(t, log.Close())
	outputs = append(outputs, "plain events: "+plain.String(), "JSON events: "+lines.String())
	assert.Contains(t, plain.String(), "Registries (/etc/rancher/k3s/registries.yaml): mirror docker.io → https://mirror.example.com; *: credentials; mirror.example.com: credentials.", "the summary names the mirrors")
	logged, _ := ti.read(t, LogPath)
	state, mode := ti.read(t, StatePath)
	assert.Equal(t, os.FileMode(0o600), mode, "state")
	outputs = append(outputs, "install log: "+logged, "state: "+state)

	body, mode := ti.read(t, RegistriesPath)
	assert.Equal(t, os.FileMode(0o600), mode)
	assert.Contains(t, body, "password: "+sentinel, "K3s gets the real password")
	assert.Contains(t, body, "identity_token: "+sentinel+"-token")

	host := newFakeHost(t, ti.root)
	un, _, err := NewUninstallPlan(UninstallOptions{Options: ti.opts, Ops: host.ops(t)})
	require.NoError(t, err)
	js, err = json.Marshal(DryRun(context.Background(), un))
	require.NoError(t, err)
	outputs = append(outputs, "uninstall dry run: "+string(js))

	// A run that fails on the registries step says why without the password.
	ti.opts.Config.Registries.Configs["mirror.example.com"] = RegistryConfig{Auth: &RegistryAuth{Username: "puller", Password: sentinel},
		TLS: &RegistryTLS{CAFile: "/nonexistent/" + "ca.pem"}}
	_, runErr := ti.run(t)
	require.Error(t, runErr)
	outputs = append(outputs, "run error: "+runErr.Error())

	for _, out := range outputs {
		assert.NotContains(t, out, sentinel, "%.60s…", out)
	}
	assert.Contains(t, outputs[0], "password: xxxxx", "the dry run shows the file, redacted")
	assert.True(t, slices.ContainsFunc(outputs, func(s string) bool { return strings.Contains(s, "identity_token: xxxxx") }))
}

// A client certificate and key are copied like the CA; the key stays 0600
// and the dry run shows neither its content nor its digest.
func TestRegistryClientCertificate(t *testing.T) {
	dir := t.TempDir()
	cert, key := testCA(t, dir, "client")
	_, otherKey := testCA(t, dir, "other")
	tlsOf := func(cert, key string) Config {
		return Config{Registries: &Registries{Configs: map[string]RegistryConfig{"r.example:5000": {TLS: &RegistryTLS{CertFile: cert, KeyFile: key}}}}}
	}
	err := CheckRegistryFiles(tlsOf(cert, otherKey), os.ReadFile)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "registries.configs.r.example:5000.tls: cert_file and key_file are not a PEM certificate and its private key")

	c := tlsOf(cert, key)
	require.NoError(t, CheckRegistryFiles(c, os.ReadFile))
	ti := newTestInstall(t, c)
	plan, _, err := NewInstallPlan(context.Background(), ti.opts)
	require.NoError(t, err)
	js, err := json.Marshal(DryRun(context.Background(), plan))
	require.NoError(t, err)
	keyPEM, err := os.ReadFile(key)
	require.NoError(t, err)
	keyBody := strings.Split(string(keyPEM), "\n")[1]
	assert.NotContains(t, string(js), keyBody, "no key material in the dry run")
	assert.Contains(t, string(js), "private key, copied as is")

	_, err = ti.run(t)
	require.NoError(t, err)
	dst := RegistryCertsDir + "/r.example:5000/"
	got, mode := ti.read(t, dst+"client.key")
	assert.Equal(t, os.FileMode(0o600), mode)
	assert.Equal(t, string(keyPEM), got)
	_, mode = ti.read(t, dst+"client.cert")
	assert.Equal(t, os.FileMode(0o644), mode)
	body, _ := ti.read(t, RegistriesPath)
	assert.Contains(t, body, "cert_file: "+dst+"client.cert")
	assert.Contains(t, body, "key_file: "+dst+"client.key")
	assert.Contains(t, createdKinds(t, ti), dst+"client.key")
}

func TestMirrorsImage(t *testing.T) {
	var none *Registries
	assert.False(t, none.MirrorsImage("cr.fluentbit.io/fluent/fluent-bit:4.0.3"))
	r := &Registries{Mirrors: map[string]RegistryMirror{"cr.fluentbit.io": {Endpoints: []string{"https://mirror.example"}}}}
	assert.True(t, r.MirrorsImage("cr.fluentbit.io/fluent/fluent-bit:4.0.3"))
	assert.False(t, r.MirrorsImage("fluent/fluent-bit:4.0.3"), "docker.io is not mirrored")
	assert.False(t, r.MirrorsImage("localhost:5000/x:1"))
	r = &Registries{Mirrors: map[string]RegistryMirror{"docker.io": {}}}
	assert.True(t, r.MirrorsImage("fluent/fluent-bit:4.0.3"))
	assert.True(t, (&Registries{Mirrors: map[string]RegistryMirror{"*": {}}}).MirrorsImage("quay.io/a/b:1"))
}
