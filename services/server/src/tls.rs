//! How a server speaks TLS: one certificate and key for every listener it serves (gRPC
//! through tonic's rustls, the console through `console::tls`).

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsPem {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// How a server speaks TLS.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// Serve TLS with this certificate and key (rustls); `None`: plaintext.
    pub identity: Option<tonic::transport::Identity>,
    /// The same certificate chain and key as PEM, for the HTTP console's listener.
    pub pem: Option<TlsPem>,
}
