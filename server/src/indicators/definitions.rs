//! The plan's indicators, one definition each: its stable id, what it counts, its unit, whether
//! it rests on support cases (sensitive), and its names in Vietnamese (with the plan's own
//! wording) and English. What exactly counts is in `count.rs` and docs/indicators.md.

use serde::Serialize;

/// One indicator of the plan (Kon Tum plan 3320/KH-UBND, section II.1.b), plus the support-case
/// figure supervisors with sensitive access report beside them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Indicator {
    CommunicationGroups,
    SavingsGroups,
    SavingsMembersFormalFinance,
    SavingsMembersLivelihood,
    SavingsGroupsGals,
    WomenLedGroupsTechnology,
    TrustedAddressesConsolidated,
    TrustedAddressesNew,
    VictimModelsPilot,
    VictimModelsReplicated,
    SafeDeliveryCounselled,
    ChildrensClubs,
    PolicyDialogues,
    WomenCadresTrained,
    VictimsSupported,
}

/// How a figure is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A number of groups, activities or people.
    Count,
    /// A share of a population, in percent (the population is the denominator).
    Percent,
}

/// The records an indicator counts: what its drill-down lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Counted {
    Groups,
    Activities,
    /// People, each once however many records qualify them; broken down by sex, ethnic group
    /// and age group.
    Persons,
    /// Victims (people, each once), listed by their support cases.
    Cases,
}

/// One indicator's definition.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Definition {
    #[serde(rename = "id")]
    pub indicator: Indicator,
    pub unit: Unit,
    pub counted: Counted,
    /// Built from support cases: only for users with sensitive access, small counts hidden.
    pub sensitive: bool,
    pub name_vi: &'static str,
    pub name_en: &'static str,
    /// The plan's sentence, as written (Vietnamese).
    pub plan_wording: &'static str,
}

impl Definition {
    pub fn id(&self) -> &'static str {
        self.indicator.id()
    }

    /// Whether figures come with a breakdown by sex, ethnic group and age group.
    pub fn has_breakdown(&self) -> bool {
        matches!(self.counted, Counted::Persons | Counted::Cases)
    }
}

const fn def(
    indicator: Indicator,
    unit: Unit,
    counted: Counted,
    name_vi: &'static str,
    name_en: &'static str,
    plan_wording: &'static str,
) -> Definition {
    Definition {
        indicator,
        unit,
        counted,
        sensitive: false,
        name_vi,
        name_en,
        plan_wording,
    }
}

use Counted::{Activities, Groups, Persons};
use Indicator as I;
use Unit::{Count, Percent};

/// Every indicator, in the plan's order.
pub const DEFINITIONS: &[Definition] = &[
    def(
        I::CommunicationGroups,
        Count,
        Groups,
        "Nhóm truyền thông tiên phong thay đổi trong cộng đồng",
        "Community communication groups",
        "Xây dựng 274 nhóm truyền thông tiên phong thay đổi trong cộng đồng.",
    ),
    def(
        I::SavingsGroups,
        Count,
        Groups,
        "Tổ tiết kiệm vay vốn thôn bản",
        "Village savings and loan groups",
        "Phát triển 91 tổ tiết kiệm vay vốn thôn bản.",
    ),
    def(
        I::SavingsMembersFormalFinance,
        Percent,
        Persons,
        "Thành viên tổ tiết kiệm vay vốn được giới thiệu tiếp cận tài chính chính thức",
        "Savings group members linked to formal finance",
        "Thí điểm hỗ trợ giới thiệu 15% thành viên tiếp cận các chế tài chính thức.",
    ),
    def(
        I::SavingsMembersLivelihood,
        Percent,
        Persons,
        "Thành viên tổ tiết kiệm vay vốn được hỗ trợ phát triển sinh kế",
        "Savings group members given livelihood support",
        "Hỗ trợ 15% thành viên của tổ phát triển sinh kế.",
    ),
    def(
        I::SavingsGroupsGals,
        Count,
        Groups,
        "Tổ tiết kiệm vay vốn áp dụng phương pháp học tập và hành động giới (GALS)",
        "Savings groups using gender action learning (GALS)",
        "Thí điểm 55 tổ tiết kiệm vay vốn thôn bản áp dụng phương pháp học tập và hành động giới.",
    ),
    def(
        I::WomenLedGroupsTechnology,
        Count,
        Groups,
        "Tổ sinh kế, tổ hợp tác, hợp tác xã do phụ nữ làm chủ, đồng làm chủ ứng dụng công nghệ 4.0",
        "Women-led livelihood groups and cooperatives applying 4.0 technology",
        "Hỗ trợ 15 tổ sinh kế, tổ hợp tác, hợp tác xã do phụ nữ làm chủ, đồng làm chủ ứng dụng \
         khoa học công nghệ 4.0 để nâng cao quyền năng kinh tế cho phụ nữ dân tộc thiểu số.",
    ),
    def(
        I::TrustedAddressesConsolidated,
        Count,
        Groups,
        "Địa chỉ tin cậy hiện có được củng cố",
        "Existing trusted addresses consolidated",
        "Củng cố 151 mô hình địa chỉ tin cậy hiện có.",
    ),
    def(
        I::TrustedAddressesNew,
        Count,
        Groups,
        "Địa chỉ tin cậy thành lập mới",
        "New trusted addresses",
        "Thành lập mới 30 địa chỉ tin cậy hỗ trợ bảo vệ phụ nữ là nạn nhân bạo lực gia đình.",
    ),
    def(
        I::VictimModelsPilot,
        Count,
        Groups,
        "Mô hình hỗ trợ sinh kế cho nạn nhân: thí điểm",
        "Livelihood models for victims: pilot",
        "Thí điểm 10 mô hình và nhân rộng 10 mô hình hỗ trợ phát triển sinh kế cho nạn nhân bị \
         bạo lực gia đình, nạn nhân bị mua bán (nếu có).",
    ),
    def(
        I::VictimModelsReplicated,
        Count,
        Groups,
        "Mô hình hỗ trợ sinh kế cho nạn nhân: nhân rộng",
        "Livelihood models for victims: replicated",
        "Thí điểm 10 mô hình và nhân rộng 10 mô hình hỗ trợ phát triển sinh kế cho nạn nhân bị \
         bạo lực gia đình, nạn nhân bị mua bán (nếu có).",
    ),
    def(
        I::SafeDeliveryCounselled,
        Percent,
        Persons,
        "Phụ nữ DTTS vùng tỷ lệ sinh con tại nhà cao được tư vấn, tiếp cận dịch vụ sinh đẻ an toàn",
        "Ethnic-minority women in high home-birth areas counselled on safe delivery",
        "Có 80% phụ nữ DTTS có tỷ lệ sinh con tại nhà cao được tuyên truyền, vận động, tư vấn \
         kiến thức và tiếp cận với dịch vụ sinh đẻ an toàn.",
    ),
    def(
        I::ChildrensClubs,
        Count,
        Groups,
        "Câu lạc bộ thủ lĩnh của sự thay đổi của trẻ em",
        "Children's leaders of change clubs",
        "Thành lập 55 Câu lạc bộ thủ lĩnh của sự thay đổi của trẻ em, nâng cao năng lực và hỗ \
         trợ tổ chức hoạt động.",
    ),
    def(
        I::PolicyDialogues,
        Count,
        Activities,
        "Cuộc đối thoại chính sách cấp xã, cụm thôn, làng",
        "Commune and village policy dialogues",
        "Tổ chức 134 cuộc đối thoại chính sách cấp xã và cụm thôn, làng tại địa bàn khó khăn.",
    ),
    def(
        I::WomenCadresTrained,
        Count,
        Persons,
        "Cán bộ nữ DTTS được nâng cao năng lực tham gia lãnh đạo",
        "Female ethnic-minority cadres trained in leadership",
        "50 cán bộ nữ DTTS cấp huyện, xã (gồm: Cán bộ nữ trong quy hoạch vào các vị trí lãnh \
         đạo, cán bộ nữ mới bổ nhiệm, cán bộ nữ mới trúng cử lần đầu) được nâng cao năng lực \
         tham gia lãnh đạo trong hệ thống chính trị.",
    ),
    Definition {
        indicator: I::VictimsSupported,
        unit: Count,
        counted: Counted::Cases,
        sensitive: true,
        name_vi: "Nạn nhân bạo lực gia đình, mua bán người, xâm hại tình dục được hỗ trợ",
        name_en: "Victims of violence, trafficking or sexual abuse supported",
        plan_wording: "Đối tượng thụ hưởng: ... nạn nhân bị mua bán, bị bạo lực gia đình, bị \
                       xâm hại tình dục (mục II.2; kế hoạch không đặt chỉ tiêu số lượng).",
    },
];

/// Written as its id.
impl Serialize for Indicator {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl Indicator {
    /// The stable id used in the API, the targets file and exports.
    pub fn id(self) -> &'static str {
        match self {
            I::CommunicationGroups => "communication_groups",
            I::SavingsGroups => "savings_groups",
            I::SavingsMembersFormalFinance => "savings_members_formal_finance",
            I::SavingsMembersLivelihood => "savings_members_livelihood",
            I::SavingsGroupsGals => "savings_groups_gals",
            I::WomenLedGroupsTechnology => "women_led_groups_technology",
            I::TrustedAddressesConsolidated => "trusted_addresses_consolidated",
            I::TrustedAddressesNew => "trusted_addresses_new",
            I::VictimModelsPilot => "victim_livelihood_models_pilot",
            I::VictimModelsReplicated => "victim_livelihood_models_replicated",
            I::SafeDeliveryCounselled => "safe_delivery_counselled",
            I::ChildrensClubs => "childrens_clubs",
            I::PolicyDialogues => "policy_dialogues",
            I::WomenCadresTrained => "women_cadres_trained",
            I::VictimsSupported => "victims_supported",
        }
    }

    pub fn parse(id: &str) -> Option<Indicator> {
        DEFINITIONS
            .iter()
            .map(|d| d.indicator)
            .find(|i| i.id() == id)
    }

    pub fn definition(self) -> &'static Definition {
        // Every indicator has its entry; the table test below keeps it so.
        DEFINITIONS
            .iter()
            .find(|d| d.indicator == self)
            .unwrap_or(&DEFINITIONS[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_indicator_has_one_definition_and_a_unique_id() {
        let mut ids = std::collections::BTreeSet::new();
        for d in DEFINITIONS {
            assert!(ids.insert(d.id()), "{} twice", d.id());
            assert_eq!(Indicator::parse(d.id()), Some(d.indicator));
            assert_eq!(d.indicator.definition().id(), d.id());
        }
        assert_eq!(ids.len(), 15);
        assert!(Indicator::parse("nothing").is_none());
        let sensitive: Vec<_> = DEFINITIONS.iter().filter(|d| d.sensitive).collect();
        assert_eq!(
            sensitive.len(),
            1,
            "only the support-case figure is sensitive"
        );
        assert_eq!(sensitive[0].counted, Counted::Cases);
    }
}
