//! The webhook URL guard, from arbitrary text. No input panics, and a URL it takes (private
//! targets not allowed) holds, by checks written apart from the guard's own:
//! - https, no credentials, a port that is 443, 80 or at least 1024;
//! - a host that is no address the standard library calls loopback, private, link-local,
//!   unspecified, broadcast, multicast or documentation, nor IPv4's shared or benchmarking
//!   range; an IPv6 address that carries an IPv4 one (mapped, compatible, SIIT, NAT64) is
//!   judged by that, and any other must be global unicast (2000::/3);
//! - it reads back as itself.

#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use orderly_domain::webhook::parse_url;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_url(raw, true);
    let Ok(url) = parse_url(raw, false) else {
        return;
    };
    assert_eq!(url.scheme(), "https", "{raw:?}");
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{raw:?}"
    );
    assert!(
        url.port().is_none_or(|p| p == 80 || p >= 1024),
        "{raw:?} port"
    );
    match url.host() {
        Some(url::Host::Ipv4(ip)) => assert!(public_v4(ip), "{raw:?} reaches {ip}"),
        Some(url::Host::Ipv6(ip)) => assert!(public_v6(ip), "{raw:?} reaches {ip}"),
        Some(url::Host::Domain(name)) => assert!(
            !name.is_empty() && !name.contains(['\\', '/', '@']),
            "{raw:?} host {name:?}"
        ),
        None => panic!("{raw:?} has no host"),
    }
    assert_eq!(
        parse_url(url.as_str(), false).as_ref(),
        Ok(&url),
        "{raw:?} does not read back"
    );
});

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (18..20).contains(&b)))
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let tail = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    // Forms that reach an IPv4 address: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d),
    // SIIT (::ffff:0:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d).
    let carried = ip.to_ipv4_mapped().or_else(|| {
        let compatible = s[..6] == [0; 6];
        let siit = s[..6] == [0, 0, 0, 0, 0xffff, 0];
        let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
        (compatible || siit || nat64).then_some(tail)
    });
    if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    match carried {
        Some(v4) => public_v4(v4),
        // Global unicast (2000::/3), but not documentation (2001:db8::/32).
        None => s[0] & 0xe000 == 0x2000 && !(s[0] == 0x2001 && s[1] == 0xdb8),
    }
}
