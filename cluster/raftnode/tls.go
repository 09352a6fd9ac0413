package raftnode

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// tlsConfig is the TLS 1.3 configuration of every raft and RPC
// connection of a cluster keyed with key. The certificate is derived
// from the key (HKDF-SHA256 to an Ed25519 seed), so every node holds
// the same one, and each end pins the other's public key to it: only a
// holder of the cluster key can complete a handshake, as a client or as
// a server, and what travels is encrypted. No certificate authority, no
// files to distribute beyond the key memberlist already uses; the
// cryptography is the standard library's.
func tlsConfig(key []byte) (*tls.Config, error) {
	seed, err := hkdf.Key(sha256.New, key, nil, "clinit raft tls v1", ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("deriving the raft key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "clinit cluster"},
		NotBefore:    time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	// Ed25519 signs deterministically: no randomness is read.
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("raft certificate: %w", err)
	}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("peer sent no certificate")
		}
		cert, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return fmt.Errorf("peer certificate: %w", err)
		}
		got, ok := cert.PublicKey.(ed25519.PublicKey)
		if !ok || !bytes.Equal(got, pub) {
			return errors.New("peer does not hold the cluster key")
		}
		return nil
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
		ClientAuth:   tls.RequireAnyClientCert,
		// The chain is checked by VerifyPeerCertificate, against the
		// pinned key, on both ends; there is no CA to verify against.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verify,
	}, nil
}
