//! Vietnamese-aware search folding: case-, diacritic- and Unicode-form-insensitive.
//!
//! Text is stored exactly as entered; only the folded copy in the projection table is searched.
//! Folding decomposes to NFD and drops every combining mark, so precomposed and decomposed input
//! and old- or new-style tone placement ("Hoà"/"Hòa") fold alike; đ/Đ, which has no
//! decomposition, folds to d.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Folds `text` for matching: lower case, no diacritics, đ→d, apostrophes dropped, other
/// punctuation and runs of white space turned into one space.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfd() {
        if is_combining_mark(c) || matches!(c, '\'' | '’' | 'ʼ' | '‘') {
            continue;
        }
        let c = match c {
            'đ' | 'Đ' => 'd',
            // Vietnamese has no other letters without a decomposition, but stray ones
            // from other keyboards (ð) look alike to a reader.
            'ð' | 'Ð' => 'd',
            c => c,
        };
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(c.to_lowercase());
        } else {
            pending_space = true;
        }
    }
    out
}

/// Most words of a query that are searched; a name has a handful, and every word is one more
/// condition on each row.
pub const MAX_QUERY_TERMS: usize = 8;
/// Most characters of a query that are looked at.
pub const MAX_QUERY_CHARS: usize = 200;

/// Splits a query into folded words; a record matches when its folded text contains every one.
/// Only the first [`MAX_QUERY_CHARS`] characters and [`MAX_QUERY_TERMS`] distinct words count.
pub fn query_terms(query: &str) -> Vec<String> {
    let query: String = query.chars().take(MAX_QUERY_CHARS).collect();
    let mut terms: Vec<String> = Vec::new();
    for term in fold(&query).split(' ').filter(|t| !t.is_empty()) {
        if !terms.iter().any(|t| t == term) {
            terms.push(term.to_owned());
        }
        if terms.len() == MAX_QUERY_TERMS {
            break;
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_normalization::UnicodeNormalization;

    #[test]
    fn folds_diacritics_case_and_d() {
        assert_eq!(fold("Nguyễn Thị Hoà"), "nguyen thi hoa");
        assert_eq!(fold("ĐINH THỊ ĐÀO"), "dinh thi dao");
        assert_eq!(fold("Y Blơ  Xơ-đăng"), "y blo xo dang");
        assert_eq!(fold("H'Drai"), "hdrai");
    }

    #[test]
    fn unicode_form_and_tone_placement_do_not_matter() {
        let nfc: String = "Nguyễn Thị Hoà Thuý".nfc().collect();
        let nfd: String = "Nguyễn Thị Hoà Thuý".nfd().collect();
        assert_ne!(nfc, nfd);
        assert_eq!(fold(&nfc), fold(&nfd));
        assert_eq!(fold("Hòa Thúy"), fold("Hoà Thuý"));
    }

    #[test]
    fn query_terms_are_folded_words() {
        assert_eq!(query_terms("  Nguyễn   hoà "), vec!["nguyen", "hoa"]);
        assert!(query_terms("  ").is_empty());
        let many = "a b c d e f g h i j k l m n o p ".repeat(1000);
        assert_eq!(query_terms(&many).len(), MAX_QUERY_TERMS);
        assert_eq!(
            query_terms("hoa hoà HOA"),
            vec!["hoa"],
            "repeats count once"
        );
    }
}
