//! `str::parse::<f64>` without the standard library's decimal-to-float tables: the same grammar
//! and the same correctly rounded result (round half to even, subnormals, overflow to infinity),
//! computed exactly with small big-integer arithmetic. The standard parser's tables and code were
//! some 14 KB of the gzipped .wasm for two cold uses (the `Retry-After` header and two settings).

/// Parses `s` as `s.parse::<f64>()` does; `None` where that is an error.
pub fn parse_f64(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (negative, b) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if b.is_empty() {
        return None;
    }
    let value = match parse_number(b) {
        Some(v) => v,
        None => {
            if b.eq_ignore_ascii_case(b"inf") || b.eq_ignore_ascii_case(b"infinity") {
                f64::INFINITY
            } else if b.eq_ignore_ascii_case(b"nan") {
                f64::NAN
            } else {
                return None;
            }
        }
    };
    Some(if negative { -value } else { value })
}

/// `x` as `format!("{x}")` shows it, for the finite numbers settings use as bounds: integers
/// below 10^15, and others that some number of decimals up to 17 shows exactly enough to read
/// back (the shortest such, which is what `Display` prints for numbers that are not tiny).
pub fn show_f64(x: f64) -> String {
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let a = x.abs();
    if a.fract() == 0.0 && a < 1e15 {
        return format!("{sign}{}", a as u64);
    }
    for decimals in 1..=17u32 {
        let scale = 10u64.pow(decimals);
        let scaled = (a * scale as f64).round();
        if scaled >= 1e18 {
            break;
        }
        let scaled = scaled as u64;
        let text = format!(
            "{}.{:0width$}",
            scaled / scale,
            scaled % scale,
            width = decimals as usize
        );
        if parse_f64(&text) == Some(a) {
            return format!("{sign}{}", text.trim_end_matches('0'));
        }
    }
    // Not reached for the bounds settings use; shown as a plain integer part otherwise.
    format!("{sign}{}", a as u64)
}

/// `digits [. digits] [(e|E) [sign] digits]` with at least one mantissa digit, as an unsigned
/// value.
fn parse_number(b: &[u8]) -> Option<f64> {
    let mut i = 0;
    let mut digits: Vec<u8> = Vec::new();
    let mut exp10: i64 = 0;
    let mut any = false;
    while i < b.len() && b[i].is_ascii_digit() {
        digits.push(b[i] - b'0');
        any = true;
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            digits.push(b[i] - b'0');
            exp10 -= 1;
            any = true;
            i += 1;
        }
    }
    if !any {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let neg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut e: i64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            // Saturates: past this the value is 0 or infinite anyway.
            e = (e * 10 + i64::from(b[i] - b'0')).min(1 << 40);
            i += 1;
        }
        if i == start {
            return None;
        }
        exp10 += if neg { -e } else { e };
    }
    if i != b.len() {
        return None;
    }
    // Significant digits only: no leading zeros, trailing zeros moved into the exponent.
    let first = digits.iter().position(|d| *d != 0);
    let Some(first) = first else {
        return Some(0.0);
    };
    let last = digits.iter().rposition(|d| *d != 0).unwrap_or(first);
    exp10 += (digits.len() - 1 - last) as i64;
    let digits = &digits[first..=last];
    let n = digits.len() as i64;
    // The value lies in [10^(n-1+exp10), 10^(n+exp10)).
    if n + exp10 <= -324 {
        return Some(0.0); // below 1e-324, under half the smallest subnormal
    }
    if n - 1 + exp10 >= 309 {
        return Some(f64::INFINITY); // at least 1e309
    }
    let mut d = Big::from_digits(digits);
    if exp10 >= 0 {
        d.mul_pow10(exp10 as u32);
        return Some(round(d, 0, false));
    }
    // value = d / 10^m: the quotient scaled by 2^k with at least 64 bits, plus a sticky bit.
    let m = (-exp10) as u32;
    let mut p = Big::from_digits(&[1]);
    p.mul_pow10(m);
    let k = (p.bits() as i64 - d.bits() as i64 + 64).max(0) as u32;
    d.shl(k);
    let (q, rem_nonzero) = d.div_rem(&p);
    Some(round(q, k as i64, rem_nonzero))
}

/// `q * 2^-k` (plus a little more when `sticky`) rounded to the nearest f64, ties to even.
fn round(q: Big, k: i64, sticky: bool) -> f64 {
    let bits = q.bits() as i64;
    if bits == 0 {
        return 0.0;
    }
    // Keep 53 bits, or fewer where the result is subnormal (lowest bit 2^-1074).
    let drop = (bits - 53).max(k - 1074);
    if drop <= 0 {
        // Exact: at most 53 bits, none below 2^-1074.
        return q.shr_u64(0) as f64 * pow2(-k);
    }
    let drop = drop as u32;
    let mut mant = q.shr_u64(drop);
    let half = q.bit(drop - 1);
    if half && (sticky || mant & 1 == 1 || q.any_bits_below(drop - 1)) {
        mant += 1;
    }
    // At most 2^53, exact; the product overflows to infinity where it should.
    mant as f64 * pow2(i64::from(drop) - k)
}

/// 2^e as an f64 (e within the representable range, or infinity above it).
fn pow2(e: i64) -> f64 {
    if e > 1023 {
        // Split so that each factor is representable; the product overflows to infinity.
        return pow2(1023) * pow2(e - 1023);
    }
    if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (e + 1074))
    }
}

/// An unsigned big integer, little-endian 32-bit limbs.
struct Big(Vec<u32>);

impl Big {
    fn from_digits(digits: &[u8]) -> Big {
        let mut b = Big(Vec::new());
        for d in digits {
            b.mul_add(10, u32::from(*d));
        }
        b
    }

    fn mul_add(&mut self, m: u32, mut carry: u32) {
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(m) + u64::from(carry);
            *limb = v as u32;
            carry = (v >> 32) as u32;
        }
        if carry > 0 {
            self.0.push(carry);
        }
    }

    fn mul_pow10(&mut self, mut e: u32) {
        while e >= 9 {
            self.mul_add(1_000_000_000, 0);
            e -= 9;
        }
        self.mul_add(10u32.pow(e), 0);
    }

    fn bits(&self) -> u32 {
        match self.0.iter().rposition(|l| *l != 0) {
            Some(i) => 32 * i as u32 + (32 - self.0[i].leading_zeros()),
            None => 0,
        }
    }

    fn bit(&self, i: u32) -> bool {
        self.0
            .get((i / 32) as usize)
            .is_some_and(|l| l >> (i % 32) & 1 == 1)
    }

    /// Whether any bit below bit `i` is set.
    fn any_bits_below(&self, i: u32) -> bool {
        (0..i).any(|j| self.bit(j))
    }

    /// Bits `shift..shift + 64` as a u64.
    fn shr_u64(&self, shift: u32) -> u64 {
        (0..64).fold(0u64, |acc, j| acc | (u64::from(self.bit(shift + j)) << j))
    }

    fn shl(&mut self, k: u32) {
        let (words, bits) = ((k / 32) as usize, k % 32);
        if bits > 0 {
            let mut carry = 0;
            for limb in &mut self.0 {
                let v = (*limb << bits) | carry;
                carry = *limb >> (32 - bits);
                *limb = v;
            }
            if carry > 0 {
                self.0.push(carry);
            }
        }
        self.0.splice(0..0, std::iter::repeat_n(0, words));
    }

    /// The quotient, and whether the remainder is not zero (bitwise long division).
    fn div_rem(&self, d: &Big) -> (Big, bool) {
        let n = self.bits();
        let mut q = Big(vec![0; self.0.len()]);
        let mut r = Big(Vec::new());
        for i in (0..n).rev() {
            r.shl(1);
            if self.bit(i) {
                if r.0.is_empty() {
                    r.0.push(0);
                }
                r.0[0] |= 1;
            }
            if r.ge(d) {
                r.sub(d);
                q.0[(i / 32) as usize] |= 1 << (i % 32);
            }
        }
        (q, r.bits() > 0)
    }

    fn ge(&self, o: &Big) -> bool {
        let (a, b) = (self.bits(), o.bits());
        if a != b {
            return a > b;
        }
        for i in (0..self.0.len().max(o.0.len())).rev() {
            let (x, y) = (
                self.0.get(i).copied().unwrap_or(0),
                o.0.get(i).copied().unwrap_or(0),
            );
            if x != y {
                return x > y;
            }
        }
        true
    }

    fn sub(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let v = i64::from(self.0[i]) - i64::from(o.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = i64::from(v < 0);
            self.0[i] = (v + (borrow << 32)) as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_f64;
    use proptest::prelude::*;

    fn same(s: &str) {
        let want = s.parse::<f64>().ok();
        let got = parse_f64(s);
        match (want, got) {
            (Some(w), Some(g)) => assert!(
                w.to_bits() == g.to_bits() || (w.is_nan() && g.is_nan()),
                "{s:?}: {w:e} (std) against {g:e}"
            ),
            (w, g) => assert_eq!(w.is_some(), g.is_some(), "{s:?}: {w:?} against {g:?}"),
        }
    }

    #[test]
    fn matches_std_on_edge_cases() {
        for s in [
            "0",
            "-0",
            "+0",
            "1",
            "1.",
            ".5",
            ".",
            "",
            "+",
            "-",
            "e5",
            "1e",
            "1e+",
            "1e-",
            "1e5",
            "1E5",
            "1e-5",
            "0.1",
            "0.2",
            "0.3",
            "2.5",
            "86400",
            "86400.0001",
            "1.005",
            "1e22",
            "1e23",
            "9007199254740993",
            "9007199254740992.5",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1.7976931348623159e308",
            "1e308",
            "1e309",
            "2e-324",
            "2.4703282292062327e-324",
            "2.4703282292062328e-324",
            "3e-324",
            "4.9e-324",
            "5e-324",
            "1e-400",
            "1e-99999999999",
            "1e99999999999",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
            "inf",
            "-inf",
            "Infinity",
            "INF",
            "nan",
            "NaN",
            "-nan",
            "infinit",
            "1_0",
            " 1",
            "1 ",
            "0x10",
            "00012.5000",
            "0.000000000000000000000001",
            "123456789012345678901234567890",
            "1.00000000000000011102230246251565404236316680908203125",
            "1.000000000000000111022302462515654042363166809082031250001",
            "0.001",
            "1000",
            "0.01",
            "10",
            "1e-1",
            "12.3e-2",
            "--1",
            "+-1",
            "1e+-1",
            "1..2",
            "1.2.3",
        ] {
            same(s);
        }
    }

    #[test]
    fn shows_setting_bounds_as_display_does() {
        for x in [
            0.001, 1000.0, 0.01, 10.0, 0.5, 1.25, 2.0, 4.5, 0.1, 0.3, 123.456, 86400.0, 0.0, -0.5,
            1e14, 0.000123,
        ] {
            assert_eq!(super::show_f64(x), format!("{x}"));
        }
    }

    proptest! {
        #[test]
        fn shows_short_decimals_as_display_does(n in 0u64..1_000_000_000, d in 0u32..9) {
            let x = n as f64 / 10f64.powi(d as i32);
            prop_assert_eq!(super::show_f64(x), format!("{x}"));
        }

        #[test]
        fn matches_std_on_decimal_strings(
            int in "[0-9]{0,25}",
            frac in proptest::option::of("[0-9]{0,25}"),
            exp in proptest::option::of(-400i32..400),
            neg in any::<bool>(),
        ) {
            let mut s = String::new();
            if neg { s.push('-'); }
            s.push_str(&int);
            if let Some(f) = &frac { s.push('.'); s.push_str(f); }
            if let Some(e) = exp { s.push_str(&format!("e{e}")); }
            same(&s);
        }

        #[test]
        fn matches_std_on_formatted_floats(bits in any::<u64>(), digits in 1usize..20) {
            let x = f64::from_bits(bits);
            same(&format!("{x:e}"));
            same(&format!("{x:.digits$e}"));
            same(&x.to_string());
        }
    }
}
