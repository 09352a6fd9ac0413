package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

func checkKey(k []byte) error {
	switch len(k) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("key is %d bytes; want 16, 24 or 32 (AES-128, -192 or -256)", len(k))
}

// LoadKey reads a key file: one line, the base64 of 16, 24 or 32 bytes.
// The key is the cluster's root of trust (who holds it joins, and rewrites
// the cltab, which runs as root on every node), so, like sshd with a
// private key, a file that others may read or write, or that belongs to
// another user than this one or root, is refused.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read key: %w", err)
	}
	if err := checkKeyFile(path, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("cannot read key: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%s: not base64: %w", path, err)
	}
	if err := checkKey(k); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// checkKeyFile refuses a key file that is not a regular file of ours (or
// root's) that only its owner may read and write.
func checkKeyFile(path string, fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("key %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("key %s is mode %04o: others may read or change it, and whoever holds the key joins the cluster and rewrites its cltab; chmod 600 %s (clinit --keygen PATH writes it so)", path, perm, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("key %s belongs to uid %d, neither root nor this user (uid %d): refusing it", path, st.Uid, os.Geteuid())
	}
	return nil
}

// Keygen returns a new random key, as a key file holds it.
func Keygen() string {
	k := make([]byte, 32)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// WriteKey writes a new key to a new file at path, mode 0600 from the
// start (no window where it is readable), refusing to replace or follow
// anything already there.
func WriteKey(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("new key: %w", err)
	}
	_, err = f.WriteString(Keygen() + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("new key: %w", err)
	}
	return nil
}
