//! The password policy (NIST SP 800-63B style: a minimum length and a blocklist, no
//! composition rules): at least 10 characters, not the username, not trivially repetitive or
//! sequential, and not one of the ~30,000 common passwords shipped in
//! `server/data/common-passwords.txt`. operating.md ("Accounts") says why.

use std::collections::HashSet;
use std::sync::OnceLock;

/// Fewest characters a password has, leading and trailing spaces not counted.
pub const MIN_CHARS: usize = 10;
/// A username this long or longer is also refused anywhere inside a password.
const MIN_CONTAINED_USERNAME: usize = 4;
/// A common password with only digits or symbols added around it is refused too when the
/// common part has at least this many characters.
const MIN_COMMON_CORE: usize = 4;

const LIST: &str = include_str!("../data/common-passwords.txt");

/// Why a password is refused; the message tells the user what to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Weak {
    #[error("password: at least {MIN_CHARS} characters (spaces around it not counted)")]
    TooShort,
    #[error("password: must not be or contain the username")]
    Username,
    #[error("password: one character or a short pattern repeated is easy to guess")]
    Repetitive,
    #[error("password: a run like abcdef, 123456 or qwerty is easy to guess")]
    Sequential,
    #[error("password: one of the most common passwords; choose another")]
    Common,
}

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        LIST.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// How many passwords the blocklist holds.
pub fn common_count() -> usize {
    common().len()
}

/// A Vietnamese letter without its tone and vowel marks (`ộ` → `o`, `đ` → `d`); `None` for a
/// combining mark (decomposed input), which is dropped.
fn base_letter(c: char) -> Option<char> {
    const GROUPS: [(char, &str); 6] = [
        ('a', "àáảãạăằắẳẵặâầấẩẫậ"),
        ('e', "èéẻẽẹêềếểễệ"),
        ('i', "ìíỉĩị"),
        ('o', "òóỏõọôồốổỗộơờớởỡợ"),
        ('u', "ùúủũụưừứửữự"),
        ('y', "ỳýỷỹỵ"),
    ];
    if ('\u{300}'..='\u{36f}').contains(&c) {
        return None;
    }
    if c == 'đ' {
        return Some('d');
    }
    Some(
        GROUPS
            .iter()
            .find(|(_, marked)| marked.contains(c))
            .map_or(c, |(base, _)| *base),
    )
}

/// Lower case, Vietnamese marks and all whitespace removed: "Mật khẩu 123" → "matkhau123".
fn folded(lower: &str) -> String {
    lower
        .chars()
        .filter(|c| !c.is_whitespace())
        .filter_map(base_letter)
        .collect()
}

/// The password without the digits, symbols and spaces around it: "@matkhau2024!" → "matkhau".
fn core(text: &str) -> &str {
    text.trim_matches(|c: char| !c.is_alphabetic())
}

fn is_common(text: &str) -> bool {
    let list = common();
    let core = core(text);
    list.contains(text) || (core.chars().count() >= MIN_COMMON_CORE && list.contains(core))
}

/// The shortest period of `chars` (the length of the shortest unit it repeats, a partial
/// repetition at the end allowed).
fn period(chars: &[char]) -> usize {
    (1..chars.len())
        .find(|&p| chars.iter().zip(&chars[p..]).all(|(a, b)| a == b))
        .unwrap_or(chars.len())
}

/// Trivially repetitive: fewer than three different characters, or a unit shorter than the
/// minimum length repeated at least twice ("abcabcabcabc", "matkhaumatkhau").
fn is_repetitive(chars: &[char]) -> bool {
    let distinct: HashSet<&char> = chars.iter().collect();
    let p = period(chars);
    distinct.len() < 3 || (p < MIN_CHARS && 2 * p <= chars.len())
}

/// Orders a keyboard or the alphabet runs along (in either direction).
const SEQUENCES: [&str; 7] = [
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "!@#$%^&*()",
];

/// Whether `b` follows `a` in `sequence`, `step` places on (0: the same character again).
fn follows(a: char, b: char, sequence: &[char], step: isize) -> bool {
    if step == 0 {
        return a == b;
    }
    sequence.iter().enumerate().any(|(i, &c)| {
        c == a
            && i.checked_add_signed(step)
                .and_then(|j| sequence.get(j))
                .is_some_and(|&n| n == b)
    })
}

/// Trivially sequential: at most two runs along the alphabet, the digits or a keyboard row or
/// column, or of one repeated character ("abcdefghij", "qwerty1234", "aaaaa12345").
fn is_sequential(chars: &[char]) -> bool {
    let sequences: Vec<Vec<char>> = SEQUENCES.iter().map(|s| s.chars().collect()).collect();
    let mut runs = 0;
    let mut i = 0;
    while i < chars.len() {
        let mut longest = 1;
        for sequence in &sequences {
            for step in [-1, 0, 1] {
                let mut j = i;
                while j + 1 < chars.len() && follows(chars[j], chars[j + 1], sequence, step) {
                    j += 1;
                }
                longest = longest.max(j - i + 1);
            }
        }
        i += longest;
        runs += 1;
        if runs > 2 {
            return false;
        }
    }
    true
}

/// Checks a new password for `username` against the policy.
pub fn check(username: &str, password: &str) -> Result<(), Weak> {
    let lower = password.trim().to_lowercase();
    let flat = folded(&lower);
    if lower.chars().count() < MIN_CHARS {
        return Err(if lower.is_empty() || flat.is_empty() {
            Weak::Repetitive
        } else {
            Weak::TooShort
        });
    }
    let name = username.trim().to_lowercase();
    let flat_name: String = folded(&name)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    let flat_alnum: String = flat.chars().filter(|c| c.is_alphanumeric()).collect();
    let long_enough = |n: &str| n.chars().count() >= MIN_CONTAINED_USERNAME;
    if lower == name
        || (long_enough(&name) && lower.contains(&name))
        || (long_enough(&flat_name) && flat_alnum.contains(&flat_name))
    {
        return Err(Weak::Username);
    }
    let chars: Vec<char> = flat.chars().collect();
    if is_repetitive(&chars) {
        return Err(Weak::Repetitive);
    }
    if is_sequential(&chars) {
        return Err(Weak::Sequential);
    }
    if is_common(&lower) || is_common(&flat) {
        return Err(Weak::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_large_and_holds_vietnamese_passwords() {
        assert!(common_count() >= 10_000, "{}", common_count());
        for p in ["matkhau", "anhyeuem", "123456789", "iloveyou", "password"] {
            assert!(common().contains(p), "{p}");
        }
    }

    #[test]
    fn weak_passwords_are_refused_with_their_reason() {
        for (password, why) in [
            ("ngắn quá", Weak::TooShort),
            ("   abc   ", Weak::TooShort),
            ("          ", Weak::Repetitive),
            ("\t\t\t\t\t\t\t\t\t\t", Weak::Repetitive),
            ("aaaaaaaaaa", Weak::Repetitive),
            ("ĐĐĐĐĐĐĐĐĐĐĐĐ", Weak::Repetitive),
            ("abcabcabcabc", Weak::Repetitive),
            ("matkhaumatkhau", Weak::Repetitive),
            ("1212121212", Weak::Repetitive),
            ("aabbaabbab", Weak::Repetitive),
            ("abcdefghij", Weak::Sequential),
            ("ABCDEFGHIJKL", Weak::Sequential),
            ("1234567890", Weak::Sequential),
            ("0987654321", Weak::Sequential),
            ("qwertyuiop", Weak::Sequential),
            ("asdfghjkl;", Weak::Sequential),
            ("zyxwvutsrq", Weak::Sequential),
            ("qwerty1234", Weak::Sequential),
            ("aaaaa12345", Weak::Sequential),
            ("1qaz2wsx3edc", Weak::Sequential),
            ("password123", Weak::Common),
            ("PASSWORD123", Weak::Common),
            ("  iloveyou123  ", Weak::Common),
            ("matkhau123", Weak::Common),
            ("Mật khẩu 123", Weak::Common),
            ("Mật Khẩu 2024!", Weak::Common),
            ("anhyeuem1234", Weak::Common),
            ("Anh yêu em 2025", Weak::Common),
            ("dragon2024!!", Weak::Common),
            ("@football1990", Weak::Common),
            ("hoiphunu2025", Weak::Common),
        ] {
            assert_eq!(check("lan", password), Err(why), "{password:?}");
        }
    }

    #[test]
    fn the_username_is_refused_inside_a_password() {
        assert_eq!(check("lan", "LAN"), Err(Weak::TooShort));
        assert_eq!(check("nguyen.lan", "Nguyen.Lan"), Err(Weak::Username));
        assert_eq!(check("nguyen.lan", "xyz nguyen.lan 7"), Err(Weak::Username));
        assert_eq!(check("nguyen.lan", "Nguyễn Lan 1990"), Err(Weak::Username));
        assert_eq!(check("admin", "fieldsync-admin"), Err(Weak::Username));
        // Short usernames only as the whole password: "lan" is a word of many passphrases.
        assert_eq!(check("lan", "hoa lan rừng nở"), Ok(()));
    }

    #[test]
    fn ordinary_passphrases_pass() {
        for password in [
            "mật khẩu dài đủ",
            "mật-khẩu-thử",
            "một mật khẩu khác",
            "mật khẩu giám sát",
            "fieldsync-demo",
            "fieldsync-quantri",
            "cà phê sữa đá 3 ly",
            "xK9#mQ2!vT",
            "correct horse battery staple",
            "Tr0ub4dor&3x",
            "5829301746",
        ] {
            assert_eq!(check("giamsat.tinh", password), Ok(()), "{password:?}");
        }
    }
}
