//! Languages as LibreTranslate's clients name them (ISO 639-1 where there
//! is a code), what the served translation models speak, and text
//! language detection for `source: auto` and `/detect`. Detection is
//! whatlang's trigram statistics, run in the API (no model, microseconds
//! for a page of text), restricted to the languages the models translate
//! from so that it never answers a language no job could take.

use std::collections::{BTreeMap, BTreeSet};

use voxq_shared::job::JobKind;
use voxq_shared::registry::ServedModel;
use whatlang::{Detector, Lang};

/// ISO 639-1 codes of the languages whatlang tells apart.
const ISO_639_1: &[(&str, Lang)] = &[
    ("af", Lang::Afr),
    ("ak", Lang::Aka),
    ("am", Lang::Amh),
    ("ar", Lang::Ara),
    ("az", Lang::Aze),
    ("be", Lang::Bel),
    ("bg", Lang::Bul),
    ("bn", Lang::Ben),
    ("ca", Lang::Cat),
    ("cs", Lang::Ces),
    ("cy", Lang::Cym),
    ("da", Lang::Dan),
    ("de", Lang::Deu),
    ("el", Lang::Ell),
    ("en", Lang::Eng),
    ("eo", Lang::Epo),
    ("es", Lang::Spa),
    ("et", Lang::Est),
    ("fa", Lang::Pes),
    ("fi", Lang::Fin),
    ("fr", Lang::Fra),
    ("gu", Lang::Guj),
    ("he", Lang::Heb),
    ("hi", Lang::Hin),
    ("hr", Lang::Hrv),
    ("hu", Lang::Hun),
    ("hy", Lang::Hye),
    ("id", Lang::Ind),
    ("it", Lang::Ita),
    ("ja", Lang::Jpn),
    ("jv", Lang::Jav),
    ("ka", Lang::Kat),
    ("km", Lang::Khm),
    ("kn", Lang::Kan),
    ("ko", Lang::Kor),
    ("la", Lang::Lat),
    ("lt", Lang::Lit),
    ("lv", Lang::Lav),
    ("mk", Lang::Mkd),
    ("ml", Lang::Mal),
    ("mr", Lang::Mar),
    ("my", Lang::Mya),
    ("nb", Lang::Nob),
    ("ne", Lang::Nep),
    ("nl", Lang::Nld),
    ("or", Lang::Ori),
    ("pa", Lang::Pan),
    ("pl", Lang::Pol),
    ("pt", Lang::Por),
    ("ro", Lang::Ron),
    ("ru", Lang::Rus),
    ("si", Lang::Sin),
    ("sk", Lang::Slk),
    ("sl", Lang::Slv),
    ("sn", Lang::Sna),
    ("sr", Lang::Srp),
    ("sv", Lang::Swe),
    ("ta", Lang::Tam),
    ("te", Lang::Tel),
    ("th", Lang::Tha),
    ("tk", Lang::Tuk),
    ("tl", Lang::Tgl),
    ("tr", Lang::Tur),
    ("uk", Lang::Ukr),
    ("ur", Lang::Urd),
    ("uz", Lang::Uzb),
    ("vi", Lang::Vie),
    ("yi", Lang::Yid),
    ("zh", Lang::Cmn),
    ("zu", Lang::Zul),
];

/// NLLB codes whose first part is not whatlang's ISO 639-3 code (NLLB
/// names the standard variety: Modern Standard Arabic, Iranian Persian…).
const NLLB_PREFIXES: &[(&str, &str)] = &[
    ("arb", "ar"),
    ("azj", "az"),
    ("ekk", "et"),
    ("lvs", "lv"),
    ("npi", "ne"),
    ("ory", "or"),
    ("uzn", "uz"),
    ("ydd", "yi"),
    ("zho", "zh"),
];

/// The code LibreTranslate's clients use for a model's language code:
/// ISO 639-1 as it is, an NLLB code (`deu_Latn`) as its ISO 639-1 code
/// where whatlang knows the language, any other code as it is.
pub fn client_code(code: &str) -> String {
    let nllb = code.len() == 8 && code.as_bytes()[3] == b'_';
    let iso = nllb.then(|| code.get(..3)).flatten().and_then(|prefix| {
        NLLB_PREFIXES
            .iter()
            .find(|(p, _)| *p == prefix)
            .map(|(_, iso)| *iso)
            .or_else(|| {
                let lang = Lang::from_code(prefix)?;
                ISO_639_1
                    .iter()
                    .find(|(_, l)| *l == lang)
                    .map(|(iso, _)| *iso)
            })
    });
    iso.map_or_else(|| code.to_owned(), str::to_owned)
}

/// A language's English name, or its code when voxq knows no name.
pub fn name(code: &str) -> String {
    ISO_639_1
        .iter()
        .find(|(iso, _)| *iso == code)
        .map_or_else(|| code.to_owned(), |(_, lang)| lang.eng_name().to_owned())
}

/// The served translation models, each with the languages it speaks in
/// clients' codes.
fn translators(models: &[ServedModel]) -> impl Iterator<Item = (&ServedModel, BTreeSet<String>)> {
    models
        .iter()
        .filter(|m| m.info.kinds.contains(&JobKind::Translate))
        .map(|m| (m, m.info.languages.iter().map(|c| client_code(c)).collect()))
}

/// What the served translation models speak, in clients' codes: each
/// source language and the languages it translates into.
pub fn pairs(models: &[ServedModel]) -> BTreeMap<String, BTreeSet<String>> {
    let mut pairs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, codes) in translators(models) {
        for source in &codes {
            let targets = pairs.entry(source.clone()).or_default();
            targets.extend(codes.iter().filter(|t| *t != source).cloned());
        }
    }
    pairs
}

/// The translation model a pair runs on: the default one when it speaks
/// both languages, else the first that does (`pairs` lists the pairs of
/// every model, so a pair only another model speaks still translates).
pub fn model_for(models: &[ServedModel], from: &str, to: &str) -> Option<String> {
    let serving: Vec<&ServedModel> = translators(models)
        .filter(|(_, codes)| codes.contains(from) && codes.contains(to))
        .map(|(m, _)| m)
        .collect();
    serving
        .iter()
        .find(|m| m.info.default)
        .or_else(|| serving.first())
        .map(|m| m.info.name.clone())
}

/// A detected language and how sure the detector is, 0–100 as
/// LibreTranslate answers it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Detected {
    #[schema(example = 92.5)]
    pub confidence: f64,
    #[schema(example = "de")]
    pub language: String,
}

/// The language of `text` among `candidates` (clients' codes); `None`
/// when the text has no letters to go by or no candidate is one whatlang
/// knows.
pub fn detect<'a>(
    text: &str,
    candidates: impl IntoIterator<Item = &'a String>,
) -> Option<Detected> {
    let allowed: Vec<Lang> = candidates
        .into_iter()
        .filter_map(|code| ISO_639_1.iter().find(|(iso, _)| iso == code))
        .map(|(_, lang)| *lang)
        .collect();
    if allowed.is_empty() {
        return None;
    }
    let info = Detector::with_allowlist(allowed).detect(text)?;
    let iso = ISO_639_1
        .iter()
        .find(|(_, lang)| *lang == info.lang())
        .map(|(iso, _)| *iso)?;
    Some(Detected {
        confidence: (info.confidence() * 1000.0).round() / 10.0,
        language: iso.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use voxq_shared::registry::ModelInfo;

    use super::*;

    #[test]
    fn every_whatlang_language_has_an_iso_code() {
        for lang in Lang::all() {
            assert!(
                ISO_639_1.iter().any(|(_, l)| l == lang),
                "{lang:?} has no ISO 639-1 code"
            );
        }
    }

    #[test]
    fn model_codes_become_client_codes() {
        assert_eq!(client_code("de"), "de");
        assert_eq!(client_code("deu_Latn"), "de");
        assert_eq!(client_code("zho_Hans"), "zh");
        assert_eq!(client_code("swh_Latn"), "swh_Latn");
        assert_eq!(client_code("__en__"), "__en__");
        assert_eq!(name("de"), "German");
    }

    #[test]
    fn pairs_list_each_source_with_its_targets() {
        let model = |name: &str, kinds: Vec<JobKind>, languages: &[&str]| ServedModel {
            info: ModelInfo {
                name: name.into(),
                engine: "ct2-translate".into(),
                kinds,
                languages: languages.iter().map(|l| l.to_string()).collect(),
                default: false,
            },
            workers: 1,
        };
        let models = [
            model(
                "t",
                vec![JobKind::Translate],
                &["de", "deu_Latn", "en", "eng_Latn", "fr"],
            ),
            model("w", vec![JobKind::Transcribe], &["ja"]),
        ];
        let pairs = pairs(&models);
        assert_eq!(pairs.keys().collect::<Vec<_>>(), ["de", "en", "fr"]);
        assert_eq!(pairs["de"].iter().collect::<Vec<_>>(), ["en", "fr"]);

        // A pair runs on the default model when it speaks it, else on one
        // that does.
        let mut default = model("d", vec![JobKind::Translate], &["en", "de"]);
        default.info.default = true;
        let models = [models[0].clone(), default];
        assert_eq!(model_for(&models, "en", "de").as_deref(), Some("d"));
        assert_eq!(model_for(&models, "en", "fr").as_deref(), Some("t"));
        assert_eq!(model_for(&models, "en", "ja"), None);
    }

    #[test]
    fn detection_keeps_to_the_candidates() {
        let candidates = ["en".to_string(), "de".to_string(), "fr".to_string()];
        let german =
            detect("Der Hund ist glücklich und die Katze schläft.", &candidates).expect("detected");
        assert_eq!(german.language, "de");
        assert!(german.confidence > 0.0 && german.confidence <= 100.0);
        assert_eq!(detect("1234 !!", &candidates), None);
        assert_eq!(detect("hello", &["xx".to_string()]), None);
    }
}
