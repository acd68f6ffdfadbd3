// Package backup takes and restores snapshots of a tpctl node: K3s's
// datastore, its server token and CA material, and tpctl's install state and
// configuration, in one tar.gz archive with a manifest.
//
// # API
//
//	m, path, err := backup.Create(ctx, backup.Options{Reason: "pre-upgrade", ...})
//	list, err := backup.List(dir)
//	plan, err := backup.Restore(ctx, backup.RestoreOptions{Archive: path, Yes: true, ...})
//
// Create is what `tpctl backup create` runs and what an upgrade calls for its
// pre-upgrade snapshot (Options.Reason names it in the archive's file name and
// manifest). Every host path is read below Options.Root ("/" in production), so
// tests run against a directory tree.
//
// # What an archive holds
//
// The first entry is manifest.json (Manifest): format version, tpctl and K3s
// versions, creation time, data dir, node name, and for every other entry its
// path in the archive, the host path it came from, its size and sha256. Then:
//
//   - k3s/server/db/state.db: a consistent online copy of kine's SQLite
//     database (<dataDir>/server/db/state.db, WAL mode). It is taken with
//     SQLite's online backup API (sqlite3_backup_step with -1, through the
//     pure-Go driver modernc.org/sqlite) in one step: the whole copy is made
//     inside one read transaction, so it is the database as of one commit,
//     including what is still only in the WAL, while kine keeps writing (a WAL
//     reader does not block the writer). VACUUM INTO would be as consistent;
//     the backup API is used because it copies pages as they are, without
//     rebuilding every table and index into a new file. The live file is never
//     copied.
//   - k3s/server/token, k3s/server/tls/** (server-ca, client-ca,
//     request-header-ca, etcd/*, service.key, ...), k3s/server/cred/** (passwd,
//     ipsec.psk, kubeconfigs): K3s encrypts its bootstrap data in the datastore
//     with the token and refuses to start on a datastore whose bootstrap data
//     was encrypted with another one, and the datastore's service-account
//     tokens and certificates are only valid with the CA material they were
//     issued from, so the three go together.
//   - etc/rancher/node/password when present: K3s keeps its hash in the
//     datastore and rejects the node if they differ.
//   - tpctl/state.json (the install state, with the effective configuration),
//     etc/rancher/k3s/config.yaml and registries.yaml when present.
//
// Archives are written 0600 (atomically: a temporary file renamed into place)
// into DefaultDir (0700) unless an output file is named. Secrets are never
// printed: only paths, sizes and digests appear in the manifest and output.
//
// # Restore
//
// Restore refuses, naming the part or version, an archive whose entries do not
// match the manifest's sha256 (or are missing or extra), a manifest format
// newer than this tpctl reads, a backup from a newer tpctl or K3s than the one
// installed (or from another K3s minor), and a data dir that is not the
// installed one; nothing is changed then. With DryRun it returns the plan only.
// Otherwise it records its intent in RestoreIntentPath, stops k3s.service,
// moves the current db, token, tls and cred aside (kept under
// <dataDir>/server/pre-restore-<time>/), puts the archive's in place (files
// 0600, directories 0700), starts k3s.service, waits for the API and a Ready
// node, and waits until every CoreInstance and Pipeline recorded in the
// manifest is back, Ready, with the same frontends. The install state and
// K3s configuration of the running install are left as they are (they record
// what this install created); the archive's copies are for reference.
//
// A restore that was interrupted (killed, timed out, a failed start) is
// completed by restoring the same archive again: the intent records the
// archive's sha256, the plan and the phase (extracting, stopping k3s,
// replacing files, starting k3s, waiting), each written before the phase
// acts, and every phase can run again from its start (a file already moved
// aside or put in place is not moved twice). Another archive is refused,
// naming the one in progress, until then.
package backup

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// FormatVersion is the manifest format this package writes and the newest
// it reads.
const FormatVersion = 1

// DefaultDir is where archives are kept unless an output file is named.
const DefaultDir = "/var/lib/tpctl/backups"

// RestoreIntentPath records a restore in progress (what it moved where).
const RestoreIntentPath = "/var/lib/tpctl/restore.json"

// Archive entry names.
const (
	ManifestName = "manifest.json"
	DBPart       = "k3s/server/db/state.db"
	TokenPart    = "k3s/server/token"
	TLSPrefix    = "k3s/server/tls/"
	CredPrefix   = "k3s/server/cred/"
	StatePart    = "tpctl/state.json"
)

// Manifest describes one archive.
type Manifest struct {
	Format       int       `json:"format"`
	TpctlVersion string    `json:"tpctlVersion"`
	K3sVersion   string    `json:"k3sVersion"`
	CreatedAt    time.Time `json:"createdAt"`
	// Reason is why the snapshot was taken ("manual", "pre-upgrade").
	Reason   string `json:"reason,omitempty"`
	DataDir  string `json:"dataDir"`
	NodeName string `json:"nodeName,omitempty"`
	Parts    []Part `json:"parts"`
	// Datastore describes the database copy.
	Datastore DatastoreInfo `json:"datastore"`
	// Inventory is what the cluster held when the snapshot was taken; a
	// restore waits until it is back. Nil when the API could not be read
	// (InventoryError says why).
	Inventory      *Inventory `json:"inventory,omitempty"`
	InventoryError string     `json:"inventoryError,omitempty"`
}

// Part is one file of the archive.
type Part struct {
	// Path is the entry's name in the archive.
	Path string `json:"path"`
	// Source is the host path it was read from.
	Source string `json:"source"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// DatastoreInfo is read from the copy of kine's database.
type DatastoreInfo struct {
	// Rows is the number of rows of kine's table; Revision its highest id.
	Rows     int64 `json:"rows"`
	Revision int64 `json:"revision"`
	// Method is how the copy was taken.
	Method string `json:"method"`
}

// Inventory is the tpctl objects of a cluster.
type Inventory struct {
	CoreInstances []Object `json:"coreInstances"`
	Pipelines     []Object `json:"pipelines"`
}

// Object is one CoreInstance or Pipeline.
type Object struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Ready     bool   `json:"ready"`
	// Frontends are a pipeline's assigned frontends, "TCP/2200", sorted.
	Frontends []string `json:"frontends,omitempty"`
}

// Key is namespace/name.
func (o Object) Key() string { return o.Namespace + "/" + o.Name }

// part returns the manifest's part named path.
func (m Manifest) part(path string) (Part, bool) {
	for _, p := range m.Parts {
		if p.Path == path {
			return p, true
		}
	}
	return Part{}, false
}

// validate checks what a manifest must hold before anything is trusted.
func (m Manifest) validate() error {
	if m.Format < 1 {
		return fmt.Errorf("manifest format %d is not valid", m.Format)
	}
	if m.Format > FormatVersion {
		return &VersionError{What: "manifest format", Archive: fmt.Sprint(m.Format), Installed: fmt.Sprint(FormatVersion),
			Reason: "this tpctl reads archives up to format " + fmt.Sprint(FormatVersion)}
	}
	if !filepath.IsAbs(m.DataDir) {
		return fmt.Errorf("manifest dataDir %q is not an absolute path", m.DataDir)
	}
	seen := map[string]bool{}
	for _, p := range m.Parts {
		if err := checkEntryName(p.Path); err != nil {
			return err
		}
		if seen[p.Path] {
			return fmt.Errorf("manifest names part %s twice", p.Path)
		}
		seen[p.Path] = true
		if len(p.SHA256) != 64 {
			return fmt.Errorf("manifest part %s has no valid sha256", p.Path)
		}
	}
	for _, need := range []string{DBPart, TokenPart} {
		if !seen[need] {
			return fmt.Errorf("manifest has no part %s", need)
		}
	}
	return nil
}

// checkEntryName refuses archive names that could leave the target
// directories: absolute, "..", or outside the known prefixes.
func checkEntryName(name string) error {
	clean := filepath.ToSlash(filepath.Clean(name))
	if name == "" || clean != name || strings.HasPrefix(name, "/") || slices.Contains(strings.Split(name, "/"), "..") {
		return fmt.Errorf("archive entry %q is not a clean relative path", name)
	}
	for _, prefix := range []string{"k3s/server/", "tpctl/", "etc/rancher/k3s/", "etc/rancher/node/"} {
		if strings.HasPrefix(name, prefix) {
			return nil
		}
	}
	return fmt.Errorf("archive entry %q is outside what a backup holds", name)
}

// VersionError is an archive whose versions do not fit this host.
type VersionError struct {
	What               string // "manifest format", "tpctl", "K3s", "dataDir"
	Archive, Installed string
	Reason             string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("the archive's %s %s does not fit (installed: %s): %s", e.What, e.Archive, e.Installed, e.Reason)
}

// DigestError is an archive part whose content is not what the manifest says.
type DigestError struct {
	Part   string
	Reason string
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("archive part %s: %s", e.Part, e.Reason)
}

func encodeManifest(m Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}
