//! Language codes: clients may say `de` (ISO 639-1) or `deu_Latn`
//! (NLLB/FLORES-200); translation models name languages their own way.

/// ISO 639-1 → NLLB/FLORES-200, for the languages NLLB-200 covers that
/// have a two-letter code.
const ISO_TO_NLLB: &[(&str, &str)] = &[
    ("af", "afr_Latn"),
    ("am", "amh_Ethi"),
    ("ar", "arb_Arab"),
    ("as", "asm_Beng"),
    ("az", "azj_Latn"),
    ("ba", "bak_Cyrl"),
    ("be", "bel_Cyrl"),
    ("bg", "bul_Cyrl"),
    ("bn", "ben_Beng"),
    ("bo", "bod_Tibt"),
    ("bs", "bos_Latn"),
    ("ca", "cat_Latn"),
    ("cs", "ces_Latn"),
    ("cy", "cym_Latn"),
    ("da", "dan_Latn"),
    ("de", "deu_Latn"),
    ("el", "ell_Grek"),
    ("en", "eng_Latn"),
    ("eo", "epo_Latn"),
    ("es", "spa_Latn"),
    ("et", "est_Latn"),
    ("eu", "eus_Latn"),
    ("fa", "pes_Arab"),
    ("fi", "fin_Latn"),
    ("fo", "fao_Latn"),
    ("fr", "fra_Latn"),
    ("ga", "gle_Latn"),
    ("gl", "glg_Latn"),
    ("gu", "guj_Gujr"),
    ("ha", "hau_Latn"),
    ("he", "heb_Hebr"),
    ("hi", "hin_Deva"),
    ("hr", "hrv_Latn"),
    ("ht", "hat_Latn"),
    ("hu", "hun_Latn"),
    ("hy", "hye_Armn"),
    ("id", "ind_Latn"),
    ("ig", "ibo_Latn"),
    ("is", "isl_Latn"),
    ("it", "ita_Latn"),
    ("ja", "jpn_Jpan"),
    ("jv", "jav_Latn"),
    ("ka", "kat_Geor"),
    ("kk", "kaz_Cyrl"),
    ("km", "khm_Khmr"),
    ("kn", "kan_Knda"),
    ("ko", "kor_Hang"),
    ("ky", "kir_Cyrl"),
    ("lb", "ltz_Latn"),
    ("ln", "lin_Latn"),
    ("lo", "lao_Laoo"),
    ("lt", "lit_Latn"),
    ("lv", "lvs_Latn"),
    ("mg", "plt_Latn"),
    ("mi", "mri_Latn"),
    ("mk", "mkd_Cyrl"),
    ("ml", "mal_Mlym"),
    ("mn", "khk_Cyrl"),
    ("mr", "mar_Deva"),
    ("ms", "zsm_Latn"),
    ("mt", "mlt_Latn"),
    ("my", "mya_Mymr"),
    ("ne", "npi_Deva"),
    ("nl", "nld_Latn"),
    ("nn", "nno_Latn"),
    ("no", "nob_Latn"),
    ("oc", "oci_Latn"),
    ("pa", "pan_Guru"),
    ("pl", "pol_Latn"),
    ("ps", "pbt_Arab"),
    ("pt", "por_Latn"),
    ("ro", "ron_Latn"),
    ("ru", "rus_Cyrl"),
    ("sa", "san_Deva"),
    ("sd", "snd_Arab"),
    ("si", "sin_Sinh"),
    ("sk", "slk_Latn"),
    ("sl", "slv_Latn"),
    ("sn", "sna_Latn"),
    ("so", "som_Latn"),
    ("sq", "als_Latn"),
    ("sr", "srp_Cyrl"),
    ("su", "sun_Latn"),
    ("sv", "swe_Latn"),
    ("sw", "swh_Latn"),
    ("ta", "tam_Taml"),
    ("te", "tel_Telu"),
    ("tg", "tgk_Cyrl"),
    ("th", "tha_Thai"),
    ("tk", "tuk_Latn"),
    ("tl", "tgl_Latn"),
    ("tr", "tur_Latn"),
    ("tt", "tat_Cyrl"),
    ("uk", "ukr_Cyrl"),
    ("ur", "urd_Arab"),
    ("uz", "uzn_Latn"),
    ("vi", "vie_Latn"),
    ("yi", "ydd_Hebr"),
    ("yo", "yor_Latn"),
    ("zh", "zho_Hans"),
    ("zu", "zul_Latn"),
];

/// The NLLB code for an ISO 639-1 or NLLB code; `None` if unknown.
pub fn to_nllb(code: &str) -> Option<&'static str> {
    ISO_TO_NLLB
        .iter()
        .find(|(iso, nllb)| *iso == code || *nllb == code)
        .map(|(_, nllb)| *nllb)
}

/// The ISO 639-1 code of an NLLB code, where there is one.
pub fn to_iso(nllb: &str) -> Option<&'static str> {
    ISO_TO_NLLB
        .iter()
        .find(|(_, n)| *n == nllb)
        .map(|(iso, _)| *iso)
}

/// Every name of a language that a model's tokens may use: the code
/// itself, its ISO 639-1 code, its NLLB code and its ISO 639-3 code (the
/// NLLB code's first part, as OPUS-MT's `>>deu<<` tokens use it).
pub fn aliases(code: &str) -> Vec<String> {
    let nllb = to_nllb(code).or_else(|| {
        // A three-letter code: the NLLB code it starts.
        let three = code.len() == 3 && code.bytes().all(|b| b.is_ascii_lowercase());
        three
            .then(|| {
                ISO_TO_NLLB
                    .iter()
                    .map(|(_, nllb)| *nllb)
                    .find(|nllb| nllb.starts_with(code) && nllb.as_bytes()[3] == b'_')
            })
            .flatten()
    });
    let mut names = vec![code.to_owned()];
    if let Some(nllb) = nllb {
        names.extend(to_iso(nllb).map(str::to_owned));
        names.push(nllb.to_owned());
        names.push(nllb[..3].to_owned());
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// `xxx_Yyyy`: the shape of NLLB/FLORES-200 codes.
pub fn is_nllb_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 8
        && b[3] == b'_'
        && b[..3].iter().all(u8::is_ascii_lowercase)
        && b[4].is_ascii_uppercase()
        && b[5..].iter().all(u8::is_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_both_ways() {
        assert_eq!(to_nllb("de"), Some("deu_Latn"));
        assert_eq!(to_nllb("deu_Latn"), Some("deu_Latn"));
        assert_eq!(to_nllb("xx"), None);
        assert_eq!(to_iso("spa_Latn"), Some("es"));
        assert!(is_nllb_code("eng_Latn"));
        assert!(!is_nllb_code("en"));
        assert!(!is_nllb_code("ENG_latn"));
        assert_eq!(aliases("de"), ["de", "deu_Latn", "deu"]);
        assert_eq!(aliases("deu"), ["deu", "de", "deu_Latn"]);
        assert_eq!(aliases("spa_Latn"), ["spa_Latn", "es", "spa"]);
        assert_eq!(aliases("pt_BR"), ["pt_BR"]);
        for (iso, nllb) in ISO_TO_NLLB {
            assert_eq!(iso.len(), 2, "{iso}");
            assert!(is_nllb_code(nllb), "{nllb}");
        }
    }
}
