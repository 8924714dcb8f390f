//! TCP listener: loopback unless an address is given explicitly (and then a warning is logged).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

/// `PORT` (loopback), `localhost:PORT`, or `ADDR:PORT` (IPv4 or `[IPv6]`).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("--tcp {s}: bad port"))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| format!("--tcp {s}: expected PORT, localhost:PORT or ADDR:PORT"))
}

pub fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    if !addr.ip().is_loopback() {
        eprintln!(
            "bertq: warning: listening on {addr}, which is not a loopback address: the \
             server is reachable from the network (clients must present the --token-file token)"
        );
    }
    let l = TcpListener::bind(addr).map_err(|e| format!("tcp {addr}: {e}"))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("tcp {addr}: {e}"))?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(
            parse_addr("7000").unwrap(),
            "127.0.0.1:7000".parse().unwrap()
        );
        assert_eq!(
            parse_addr("localhost:7001").unwrap(),
            "127.0.0.1:7001".parse().unwrap()
        );
        assert_eq!(
            parse_addr("[::1]:7002").unwrap(),
            "[::1]:7002".parse().unwrap()
        );
        assert!(parse_addr("0.0.0.0:80").unwrap().ip().is_unspecified());
        assert!(parse_addr("nonsense").is_err());
        assert!(parse_addr("localhost:99999").is_err());
    }
}
