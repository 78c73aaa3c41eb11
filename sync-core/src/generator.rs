//! A realistic, seeded data generator: communes, households, beneficiaries with Kinh and
//! ethnic-minority names, groups and activities. Tests, benchmarks and the demo server use it;
//! the same seed always gives the same records, ids included.

use crate::error::Result;
use crate::model::{Areas, RecordType, Value};
use crate::store::Store;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    pub seed: u64,
    /// Commune codes to spread records over; empty means every pre-merger commune.
    pub communes: Vec<String>,
    pub households: usize,
    /// Groups and activities are made in proportion to households.
    pub groups_per_100_households: usize,
    pub activities_per_group: usize,
    /// Support cases (sensitive) per 100 households.
    pub cases_per_100_households: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 8,
            communes: Vec::new(),
            households: 100,
            groups_per_100_households: 6,
            activities_per_group: 3,
            cases_per_100_households: 2,
        }
    }
}

/// A record to create: its id, type, fields and set members.
#[derive(Clone, Debug, PartialEq)]
pub struct GenRecord {
    pub id: Uuid,
    pub record_type: RecordType,
    pub fields: BTreeMap<String, Value>,
    pub sets: Vec<(String, String)>,
}

impl GenRecord {
    pub fn commune(&self) -> &str {
        self.fields
            .get("commune")
            .and_then(Value::as_text)
            .unwrap_or("")
    }
}

/// SplitMix64: tiny, fast and good enough for test data; keeps the core free of a rand crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn weighted<'a>(&mut self, items: &'a [(&'a str, u32)]) -> &'a str {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut roll = (self.next_u64() % u64::from(total.max(1))) as u32;
        for (item, w) in items {
            if roll < *w {
                return item;
            }
            roll -= w;
        }
        items[0].0
    }

    /// A deterministic UUIDv7 (time-ordered) from a counter and this generator.
    pub fn uuid_v7(&mut self, counter: u64) -> Uuid {
        let millis = 1_656_633_600_000 + counter; // 1 July 2022, the plan's first year
        let random = self.next_u64().to_le_bytes();
        let more = self.next_u64().to_le_bytes();
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&random);
        bytes[8..].copy_from_slice(&more[..2]);
        uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
    }
}

// Ethnic groups of Kon Tum, weighted towards the minorities Project 8 works with.
const ETHNICITIES: &[(&str, u32)] = &[
    ("01", 20), // Kinh
    ("14", 32), // Xơ Đăng
    ("13", 18), // Ba Na
    ("27", 12), // Giẻ Triêng
    ("10", 8),  // Gia Rai
    ("19", 3),  // Hrê
    ("54", 2),  // Rơ Măm
    ("52", 2),  // Brâu
];

const KINH_FAMILY: &[&str] = &[
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương",
];
const KINH_MIDDLE_F: &[&str] = &["Thị", "Ngọc", "Thu", "Thị Thanh", "Kim"];
const KINH_MIDDLE_M: &[&str] = &["Văn", "Đức", "Minh", "Quốc"];
const KINH_GIVEN_F: &[&str] = &[
    "Hoà",
    "Thuý",
    "Lan",
    "Hương",
    "Mai",
    "Hằng",
    "Nga",
    "Dung",
    "Phượng",
    "Yến",
    "Tuyết",
    "Nhung",
    "Trang",
    "Linh",
    "Hạnh",
    "Đào",
    "Oanh",
    "Huệ",
    "Loan",
    "Diệu",
];
const KINH_GIVEN_M: &[&str] = &[
    "Hùng", "Dũng", "Tuấn", "Đức", "Phúc", "Quý", "Thắng", "Long",
];
// Minority names: a short prefix (Y for women in Xơ Đăng and Ba Na, A for men; H' and Ksor,
// Siu, Rơ Châm among Gia Rai), letters ơ, ư, đ and apostrophes.
const MINORITY_GIVEN_F: &[&str] = &[
    "Blơ", "Hơ", "Nhiên", "Khuyên", "Mlơ", "Đrim", "Bơ", "Thươi", "Hnui", "Lêm", "Rin", "Xuân",
    "Hiền", "Nghĩa", "Phương", "Pui", "Đăm", "Sương", "Kơn", "Hlen",
];
const MINORITY_GIVEN_M: &[&str] = &["Blưn", "Hyơk", "Đoan", "Thưk", "Rô", "Nhiêu", "Kră", "Mưh"];
const GIA_RAI_FAMILY: &[&str] = &["Ksor", "Siu", "Rơ Châm", "Rơ Mah", "Kpă"];
const VILLAGES: &[&str] = &[
    "Làng Le",
    "Thôn Đăk Mế",
    "Làng Kon Rẫy",
    "Thôn 1",
    "Thôn 2",
    "Làng Tu Rằng",
    "Thôn Đăk Ang",
    "Làng Pu Tá",
    "Thôn Long Nang",
    "Làng Kon Klor",
    "Thôn Xốp Dùi",
];
const TOPICS: &[&str] = &[
    "Phòng chống bạo lực gia đình",
    "Xoá bỏ tảo hôn và hôn nhân cận huyết thống",
    "Làm mẹ an toàn: chăm sóc trước sinh",
    "Bình đẳng giới trong gia đình",
    "Phòng chống mua bán người",
    "Tiết kiệm và vay vốn: họp tháng",
    "Đối thoại chính sách: tiếp cận vốn vay",
    "Kỹ năng lãnh đạo cho cán bộ nữ DTTS",
];

/// Makes a full name for someone of `ethnicity` and `sex`.
pub fn person_name(rng: &mut Rng, ethnicity: &str, female: bool) -> String {
    match ethnicity {
        "01" => {
            let middle = if female { KINH_MIDDLE_F } else { KINH_MIDDLE_M };
            let given = if female { KINH_GIVEN_F } else { KINH_GIVEN_M };
            format!(
                "{} {} {}",
                rng.pick(KINH_FAMILY),
                rng.pick(middle),
                rng.pick(given)
            )
        }
        "10" => {
            let given = if female {
                format!("H'{}", rng.pick(MINORITY_GIVEN_F))
            } else {
                rng.pick(MINORITY_GIVEN_M).to_string()
            };
            format!("{} {}", rng.pick(GIA_RAI_FAMILY), given)
        }
        _ => {
            let given = if female {
                MINORITY_GIVEN_F
            } else {
                MINORITY_GIVEN_M
            };
            let prefix = if female { "Y" } else { "A" };
            // Many minority officers register a Kinh-style family name on their ID card.
            if rng.chance(30) {
                let middle = if female { "Thị" } else { "Văn" };
                format!(
                    "{} {middle} {}",
                    rng.pick(&["Đinh", "A", "Y", "Hồ", "Nguyễn"]),
                    rng.pick(given)
                )
            } else {
                format!("{prefix} {}", rng.pick(given))
            }
        }
    }
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

/// Generates a dataset. Deterministic for a given config.
pub fn generate(config: &GenConfig) -> Vec<GenRecord> {
    let mut rng = Rng::new(config.seed);
    // The fields added with record schema 2 draw from their own sequence, so the records of a
    // seed are what they were before, with the new fields added.
    let mut extra = Rng::new(config.seed ^ 0x5c4e_3a02);
    let communes: Vec<String> = if config.communes.is_empty() {
        Areas::bundled()
            .communes_on("2024-01-01")
            .map(|a| a.code.clone())
            .collect()
    } else {
        config.communes.clone()
    };
    let mut out = Vec::new();
    let mut counter = 0u64;
    let mut next_id = |rng: &mut Rng| {
        counter += 1;
        rng.uuid_v7(counter)
    };
    let mut persons_by_commune: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
    for h in 0..config.households {
        let commune = communes[h % communes.len()].clone();
        let ethnicity = match commune.as_str() {
            "62.616.01" if rng.chance(40) => "54",
            "62.611.01" if rng.chance(40) => "52",
            _ => rng.weighted(ETHNICITIES),
        }
        .to_owned();
        let household_id = next_id(&mut rng);
        let head_female = rng.chance(60);
        let head = person_name(&mut rng, &ethnicity, head_female);
        let mut fields = BTreeMap::from([
            ("commune".to_owned(), text(commune.clone())),
            ("village".to_owned(), text(*rng.pick(VILLAGES))),
            ("head_name".to_owned(), text(head.clone())),
            ("ethnicity".to_owned(), text(ethnicity.clone())),
            (
                "poverty".to_owned(),
                text(rng.weighted(&[("poor", 45), ("near_poor", 25), ("none", 30)])),
            ),
            (
                "especially_difficult_village".to_owned(),
                Value::Bool(rng.chance(55)),
            ),
        ]);
        let members = 2 + rng.below(4);
        let mut member_ids = Vec::new();
        for m in 0..members {
            let id = next_id(&mut rng);
            member_ids.push(id);
            // Beneficiaries are women and girls; the head may be a man.
            let female = m > 0 || head_female;
            let name = if m == 0 {
                head.clone()
            } else {
                person_name(&mut rng, &ethnicity, female)
            };
            let year = 1960 + rng.below(55);
            let birth = if rng.chance(40) {
                format!("{year}")
            } else {
                format!("{year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))
            };
            let mut p = BTreeMap::from([
                ("commune".to_owned(), text(commune.clone())),
                ("household_id".to_owned(), text(household_id.to_string())),
                ("full_name".to_owned(), text(name)),
                (
                    "sex".to_owned(),
                    text(if female { "female" } else { "male" }),
                ),
                ("birth".to_owned(), text(birth)),
                ("ethnicity".to_owned(), text(ethnicity.clone())),
            ]);
            if rng.chance(50) {
                p.insert(
                    "national_id".into(),
                    text(format!("0620{:08}", rng.next_u64() % 100_000_000)),
                );
            }
            if rng.chance(8) {
                p.insert("disability".into(), text(*rng.pick(&["mild", "severe"])));
            }
            if rng.chance(35) {
                p.insert(
                    "phone".into(),
                    text(format!("09{:08}", rng.next_u64() % 100_000_000)),
                );
            }
            if extra.chance(12) {
                p.insert("formal_finance_linked".into(), text(date(&mut extra)));
            }
            if extra.chance(12) {
                p.insert("livelihood_supported".into(), text(date(&mut extra)));
            }
            if female && ethnicity != "01" && extra.chance(4) {
                p.insert(
                    "cadre".into(),
                    text(*extra.pick(crate::model::schema::CADRE)),
                );
            }
            out.push(GenRecord {
                id,
                record_type: RecordType::Person,
                fields: p,
                sets: vec![],
            });
        }
        fields.insert("head_person_id".into(), text(member_ids[0].to_string()));
        persons_by_commune
            .entry(commune.clone())
            .or_default()
            .extend(&member_ids);
        out.push(GenRecord {
            id: household_id,
            record_type: RecordType::Household,
            fields,
            sets: vec![],
        });

        if rng.below(100) < config.cases_per_100_households {
            let victim = member_ids[1 % member_ids.len()];
            let mut support = vec![];
            for _ in 0..1 + rng.below(3) {
                support.push((
                    "support".to_owned(),
                    rng.pick(crate::model::schema::SUPPORT_KINDS).to_string(),
                ));
            }
            out.push(GenRecord {
                id: next_id(&mut rng),
                record_type: RecordType::SupportCase,
                fields: BTreeMap::from([
                    ("commune".to_owned(), text(commune.clone())),
                    ("person_id".to_owned(), text(victim.to_string())),
                    (
                        "case_kind".to_owned(),
                        text(rng.weighted(&[
                            ("domestic_violence", 70),
                            ("trafficking", 15),
                            ("sexual_abuse", 15),
                        ])),
                    ),
                    ("opened".to_owned(), text(date(&mut rng))),
                    ("status".to_owned(), text("open")),
                    (
                        "case_notes".to_owned(),
                        text("Đã tư vấn tâm lý, hẹn gặp lại sau hai tuần."),
                    ),
                ]),
                sets: support,
            });
        }
    }
    let groups = (config.households * config.groups_per_100_households).div_ceil(100);
    for g in 0..groups {
        let commune = communes[g % communes.len()].clone();
        let kind = rng.weighted(&[
            ("communication_team", 30),
            ("savings_loan_group", 25),
            ("trusted_address", 15),
            ("children_club", 12),
            ("livelihood_group", 8),
            ("cooperative", 4),
            ("victim_livelihood_model", 6),
        ]);
        let village = *rng.pick(VILLAGES);
        let label = match kind {
            "communication_team" => "Nhóm truyền thông tiên phong thay đổi",
            "savings_loan_group" => "Tổ tiết kiệm vay vốn",
            "trusted_address" => "Địa chỉ tin cậy",
            "children_club" => "CLB Thủ lĩnh của sự thay đổi",
            "livelihood_group" => "Tổ sinh kế phụ nữ",
            "cooperative" => "Hợp tác xã phụ nữ",
            _ => "Mô hình sinh kế cho nạn nhân",
        };
        let mut fields = BTreeMap::from([
            ("commune".to_owned(), text(commune.clone())),
            ("village".to_owned(), text(village)),
            ("kind".to_owned(), text(kind)),
            ("name".to_owned(), text(format!("{label} {village}"))),
            ("established".to_owned(), text(date(&mut rng))),
        ]);
        match kind {
            "savings_loan_group" => {
                let gals = rng.chance(60);
                fields.insert("gals".into(), Value::Bool(gals));
                fields.insert("formal_finance_link".into(), Value::Bool(rng.chance(15)));
                if gals && extra.chance(30) {
                    fields.insert("gals_since".into(), text(date(&mut extra)));
                }
            }
            "trusted_address" => {
                fields.insert(
                    "trusted_address_status".into(),
                    text(if rng.chance(80) { "existing" } else { "new" }),
                );
            }
            "victim_livelihood_model" => {
                fields.insert(
                    "model_phase".into(),
                    text(if rng.chance(50) {
                        "pilot"
                    } else {
                        "replicated"
                    }),
                );
            }
            "livelihood_group" | "cooperative" => {
                let digital = rng.chance(50);
                fields.insert("uses_digital_technology".into(), Value::Bool(digital));
                fields.insert("women_led".into(), Value::Bool(extra.chance(70)));
                if digital && extra.chance(30) {
                    fields.insert("technology_since".into(), text(date(&mut extra)));
                }
            }
            _ => {}
        }
        let pool = persons_by_commune
            .get(&commune)
            .cloned()
            .unwrap_or_default();
        let members: Vec<(String, String)> = (0..pool.len().min(10 + rng.below(10)))
            .map(|_| ("members".to_owned(), rng.pick(&pool).to_string()))
            .collect();
        let group_id = next_id(&mut rng);
        out.push(GenRecord {
            id: group_id,
            record_type: RecordType::Group,
            fields,
            sets: members.clone(),
        });
        for _ in 0..config.activities_per_group {
            let activity_kind = match rng.weighted(&[
                ("meeting", 50),
                ("policy_dialogue", 15),
                ("training", 15),
                ("counselling", 20),
            ]) {
                "training" if extra.chance(40) => "leadership_training",
                kind => kind,
            };
            let mut fields = BTreeMap::from([
                ("commune".to_owned(), text(commune.clone())),
                ("kind".to_owned(), text(activity_kind)),
                ("date".to_owned(), text(date(&mut rng))),
                ("place".to_owned(), text(format!("Nhà văn hoá {village}"))),
                ("group_id".to_owned(), text(group_id.to_string())),
                ("topic".to_owned(), text(*rng.pick(TOPICS))),
            ]);
            if activity_kind == "counselling" {
                fields.insert(
                    "counselling_topic".into(),
                    text(*rng.pick(&["antenatal", "safe_delivery", "postnatal", "child_health"])),
                );
            }
            if activity_kind == "policy_dialogue" {
                let participants = 60 + rng.below(45) as i64;
                let raised = 5 + rng.below(15) as i64;
                fields.insert("participants".into(), Value::Int(participants));
                fields.insert("opinions_raised".into(), Value::Int(raised));
                fields.insert(
                    "opinions_answered".into(),
                    Value::Int(raised - rng.below(4) as i64),
                );
            }
            let attendees = members
                .iter()
                .filter(|_| rng.chance(70))
                .map(|(_, p)| ("attendees".to_owned(), p.clone()))
                .collect();
            out.push(GenRecord {
                id: next_id(&mut rng),
                record_type: RecordType::Activity,
                fields,
                sets: attendees,
            });
        }
    }
    out
}

fn date(rng: &mut Rng) -> String {
    format!(
        "{}-{:02}-{:02}",
        2022 + rng.below(4),
        1 + rng.below(12),
        1 + rng.below(28)
    )
}

/// The smallest valid household: the required fields only (a Xơ Đăng household, poor).
/// Tests and tools use it when the content does not matter.
pub fn minimal_household(commune: &str, head_name: &str) -> BTreeMap<String, Value> {
    [
        ("commune", commune),
        ("head_name", head_name),
        ("ethnicity", "14"),
        ("poverty", "poor"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), text(v)))
    .collect()
}

/// Writes generated records into a store, `batch` records per transaction.
pub fn load_into(store: &mut Store, records: &[GenRecord], batch: usize) -> Result<()> {
    for chunk in records.chunks(batch.max(1)) {
        store.write(|w| {
            for r in chunk {
                w.create_with_id(r.id, r.record_type, &r.fields)?;
                for (field, member) in &r.sets {
                    w.edit(r.id, |d| d.add_member(field, member))?;
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate_new_record;

    #[test]
    fn same_seed_same_data_and_every_record_is_valid() {
        let config = GenConfig {
            households: 300,
            ..GenConfig::default()
        };
        let a = generate(&config);
        assert_eq!(a, generate(&config));
        assert_ne!(
            a,
            generate(&GenConfig {
                seed: 9,
                ..config.clone()
            })
        );
        for r in &a {
            assert_eq!(
                validate_new_record(r.record_type, &r.fields),
                vec![],
                "{:?}",
                r.record_type
            );
        }
        let types: std::collections::BTreeSet<_> = a.iter().map(|r| r.record_type).collect();
        assert_eq!(types.len(), 5, "all record types are generated: {types:?}");
        let names: String = a
            .iter()
            .filter_map(|r| r.fields.get("full_name"))
            .map(|v| v.to_string())
            .collect();
        assert!(
            names.chars().any(|c| "ơưđăâêôễịạ".contains(c)),
            "names carry diacritics"
        );
    }
}
