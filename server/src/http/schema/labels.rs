//! The Vietnamese and English names of what the record model defines: record types, fields,
//! their codes, validation problems and sync reject codes. A test holds these tables to the
//! model, so a field or code added there without a name here fails the build's tests.

use fieldsync_core::model::ProblemCode;
use fieldsync_core::protocol::RejectCode;
use fieldsync_core::RecordType;

/// A name in both languages of the page.
pub type Label = (&'static str, &'static str);

pub fn record_type(t: RecordType) -> Label {
    match t {
        RecordType::Household => ("Hộ gia đình", "Household"),
        RecordType::Person => ("Nhân khẩu", "Household member"),
        RecordType::Group => ("Mô hình/nhóm", "Group/model"),
        RecordType::Activity => ("Hoạt động", "Activity"),
        RecordType::SupportCase => ("Vụ việc hỗ trợ", "Support case"),
    }
}

/// Every validation problem code, in the order the page lists them.
pub const PROBLEMS: [ProblemCode; 9] = [
    ProblemCode::Required,
    ProblemCode::NotAllowed,
    ProblemCode::InvalidFormat,
    ProblemCode::OutOfRange,
    ProblemCode::TooLong,
    ProblemCode::WrongType,
    ProblemCode::UnknownField,
    ProblemCode::NotASet,
    ProblemCode::NotAScalar,
];

pub fn problem(code: ProblemCode) -> Label {
    match code {
        ProblemCode::Required => ("Chưa nhập (bắt buộc)", "Required but empty"),
        ProblemCode::NotAllowed => ("Giá trị không có trong danh mục", "Not an allowed value"),
        ProblemCode::InvalidFormat => ("Sai định dạng", "Wrong format"),
        ProblemCode::OutOfRange => ("Ngoài khoảng cho phép", "Out of range"),
        ProblemCode::TooLong => ("Quá dài", "Too long"),
        ProblemCode::WrongType => ("Sai kiểu dữ liệu", "Wrong kind of value"),
        ProblemCode::UnknownField => (
            "Trường không có trong mẫu hồ sơ",
            "Not a field of this record type",
        ),
        ProblemCode::NotASet => ("Trường này không phải danh sách", "Not a list field"),
        ProblemCode::NotAScalar => ("Trường này là danh sách", "This field is a list"),
    }
}

pub fn rejection(code: RejectCode) -> Label {
    match code {
        RejectCode::OutOfScope => ("Ngoài địa bàn được giao", "Outside the sender's areas"),
        RejectCode::NotPermitted => ("Không được phép thay đổi", "Not a change it may make"),
        RejectCode::Invalid => ("Thay đổi không hợp lệ", "Not a valid change"),
        RejectCode::NotAuthor => (
            "Không phải thay đổi của thiết bị gửi",
            "Not the sending device's own change",
        ),
        RejectCode::TooLarge => ("Vượt giới hạn của hồ sơ", "Over a record's limits"),
        RejectCode::MissingDependency => {
            ("Thiếu thay đổi trước đó", "An earlier change is missing")
        }
        RejectCode::BadSignature => ("Sai chữ ký", "Bad signature"),
    }
}

/// Field names: `field`, or `type.field` where one name means different things in two types.
pub const FIELDS: &[(&str, &str, &str)] = &[
    ("commune", "Xã", "Commune"),
    ("village", "Thôn/làng", "Village"),
    ("head_name", "Họ tên chủ hộ", "Head of household"),
    ("head_person_id", "Hồ sơ chủ hộ", "Head's record"),
    ("ethnicity", "Dân tộc", "Ethnic group"),
    ("poverty", "Hộ nghèo/cận nghèo", "Poverty status"),
    (
        "especially_difficult_village",
        "Thôn đặc biệt khó khăn",
        "Especially difficult village",
    ),
    ("address", "Địa chỉ", "Address"),
    ("household_id", "Hộ gia đình", "Household"),
    ("full_name", "Họ và tên", "Full name"),
    ("sex", "Giới tính", "Sex"),
    ("birth", "Ngày/năm sinh", "Date/year of birth"),
    ("national_id", "Số CCCD", "ID card (CCCD)"),
    ("disability", "Khuyết tật", "Disability"),
    ("phone", "Số điện thoại", "Phone"),
    (
        "formal_finance_linked",
        "Ngày được giới thiệu tiếp cận tài chính chính thức",
        "Introduced to formal finance on",
    ),
    (
        "livelihood_supported",
        "Ngày được hỗ trợ phát triển sinh kế",
        "Livelihood support on",
    ),
    ("cadre", "Cán bộ nữ", "Female cadre"),
    ("group.kind", "Loại mô hình", "Kind of model"),
    ("name", "Tên mô hình/nhóm", "Name"),
    ("established", "Ngày thành lập", "Founded"),
    ("gals", "Áp dụng GALS", "Runs GALS"),
    (
        "formal_finance_link",
        "Liên kết tài chính chính thức",
        "Linked to formal finance",
    ),
    (
        "trusted_address_status",
        "Địa chỉ tin cậy: củng cố hay mới",
        "Trusted address: existing or new",
    ),
    ("model_phase", "Giai đoạn mô hình", "Model phase"),
    (
        "uses_digital_technology",
        "Ứng dụng công nghệ 4.0",
        "Uses 4.0 technology",
    ),
    ("members", "Thành viên", "Members"),
    (
        "women_led",
        "Do phụ nữ làm chủ, đồng làm chủ",
        "Led or co-led by women",
    ),
    ("gals_since", "Áp dụng GALS từ ngày", "GALS since"),
    (
        "technology_since",
        "Ứng dụng công nghệ 4.0 từ ngày",
        "4.0 technology since",
    ),
    ("activity.kind", "Loại hoạt động", "Kind of activity"),
    ("date", "Ngày", "Date"),
    ("place", "Địa điểm", "Place"),
    ("group_id", "Do mô hình/nhóm tổ chức", "Organised by group"),
    ("topic", "Chủ đề", "Topic"),
    ("counselling_topic", "Nội dung tư vấn", "Counselling topic"),
    ("attendees", "Người tham dự", "Attendees"),
    ("participants", "Số người tham dự", "Participants"),
    ("opinions_raised", "Số ý kiến được nêu", "Opinions raised"),
    (
        "opinions_answered",
        "Số ý kiến được trả lời",
        "Opinions answered",
    ),
    ("person_id", "Người được hỗ trợ", "Person supported"),
    ("case_kind", "Loại vụ việc", "Kind of case"),
    ("opened", "Ngày tiếp nhận", "Opened"),
    ("status", "Tình trạng vụ việc", "Case status"),
    ("support", "Hình thức hỗ trợ", "Support given"),
    ("trusted_address_id", "Địa chỉ tin cậy", "Trusted address"),
    ("case_notes", "Ghi chú", "Notes"),
];

/// Code names, by the field that holds them (`field` or `type.field`, as above).
pub const CODES: &[(&str, &str, &str, &str)] = &[
    ("poverty", "poor", "Hộ nghèo", "Poor"),
    ("poverty", "near_poor", "Hộ cận nghèo", "Near-poor"),
    (
        "poverty",
        "none",
        "Không thuộc hộ nghèo, cận nghèo",
        "Neither poor nor near-poor",
    ),
    ("sex", "female", "Nữ", "Female"),
    ("sex", "male", "Nam", "Male"),
    ("disability", "none", "Không khuyết tật", "None"),
    ("disability", "mild", "Khuyết tật nhẹ", "Mild"),
    ("disability", "severe", "Khuyết tật nặng", "Severe"),
    (
        "disability",
        "especially_severe",
        "Khuyết tật đặc biệt nặng",
        "Especially severe",
    ),
    (
        "cadre",
        "in_leadership_plan",
        "Trong quy hoạch lãnh đạo",
        "In the leadership plan",
    ),
    (
        "cadre",
        "newly_appointed",
        "Mới bổ nhiệm",
        "Newly appointed",
    ),
    (
        "cadre",
        "newly_elected",
        "Mới trúng cử lần đầu",
        "Newly elected",
    ),
    (
        "group.kind",
        "communication_team",
        "Nhóm truyền thông tiên phong thay đổi",
        "Pioneer communication group for change",
    ),
    (
        "group.kind",
        "savings_loan_group",
        "Tổ tiết kiệm vay vốn thôn bản",
        "Village savings and loan group",
    ),
    (
        "group.kind",
        "livelihood_group",
        "Tổ/nhóm sinh kế",
        "Livelihood group",
    ),
    ("group.kind", "cooperative", "Hợp tác xã", "Cooperative"),
    (
        "group.kind",
        "trusted_address",
        "Địa chỉ tin cậy",
        "Trusted address",
    ),
    (
        "group.kind",
        "children_club",
        "CLB Thủ lĩnh của sự thay đổi",
        "Children's leaders of change club",
    ),
    (
        "group.kind",
        "victim_livelihood_model",
        "Mô hình sinh kế hỗ trợ nạn nhân",
        "Livelihood model for victims",
    ),
    (
        "trusted_address_status",
        "existing",
        "Củng cố (đã có)",
        "Existing (consolidated)",
    ),
    (
        "trusted_address_status",
        "new",
        "Thành lập mới",
        "Newly set up",
    ),
    ("model_phase", "pilot", "Thí điểm", "Pilot"),
    ("model_phase", "replicated", "Nhân rộng", "Replicated"),
    ("activity.kind", "meeting", "Họp, sinh hoạt", "Meeting"),
    (
        "activity.kind",
        "policy_dialogue",
        "Đối thoại chính sách",
        "Policy dialogue",
    ),
    ("activity.kind", "training", "Tập huấn", "Training"),
    ("activity.kind", "counselling", "Tư vấn", "Counselling"),
    (
        "activity.kind",
        "leadership_training",
        "Bồi dưỡng năng lực lãnh đạo",
        "Leadership training",
    ),
    (
        "counselling_topic",
        "antenatal",
        "Chăm sóc trước sinh",
        "Antenatal care",
    ),
    (
        "counselling_topic",
        "safe_delivery",
        "Sinh đẻ an toàn",
        "Safe delivery",
    ),
    (
        "counselling_topic",
        "postnatal",
        "Chăm sóc sau sinh",
        "Postnatal care",
    ),
    (
        "counselling_topic",
        "child_health",
        "Chăm sóc sức khoẻ trẻ em",
        "Child health",
    ),
    (
        "counselling_topic",
        "gender_equality",
        "Bình đẳng giới",
        "Gender equality",
    ),
    (
        "counselling_topic",
        "violence_prevention",
        "Phòng, chống bạo lực",
        "Violence prevention",
    ),
    ("counselling_topic", "other", "Khác", "Other"),
    (
        "case_kind",
        "domestic_violence",
        "Bạo lực gia đình",
        "Domestic violence",
    ),
    ("case_kind", "trafficking", "Mua bán người", "Trafficking"),
    (
        "case_kind",
        "sexual_abuse",
        "Xâm hại tình dục",
        "Sexual abuse",
    ),
    ("status", "open", "Đang xử lý", "Open"),
    ("status", "supported", "Đã hỗ trợ", "Supported"),
    ("status", "closed", "Đã kết thúc", "Closed"),
    (
        "support",
        "essentials_travel",
        "Nhu yếu phẩm, chi phí đi lại",
        "Essentials and travel",
    ),
    ("support", "medical", "Hỗ trợ y tế", "Medical"),
    ("support", "psychological", "Hỗ trợ tâm lý", "Psychological"),
    ("support", "legal_aid", "Trợ giúp pháp lý", "Legal aid"),
    (
        "support",
        "schooling_vocational",
        "Học văn hoá, học nghề",
        "Schooling, vocational training",
    ),
    (
        "support",
        "hardship_allowance",
        "Trợ cấp khó khăn",
        "Hardship allowance",
    ),
    ("support", "loan", "Vay vốn", "Loan"),
    ("support", "referral", "Giới thiệu, chuyển gửi", "Referral"),
    (
        "support",
        "temporary_shelter",
        "Tạm lánh",
        "Temporary shelter",
    ),
];

/// The name of `field` of `t`, if the table has one.
pub fn field(t: RecordType, field: &str) -> Option<Label> {
    let name = |key: &str| {
        FIELDS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, vi, en)| (*vi, *en))
    };
    name(&format!("{t}.{field}")).or_else(|| name(field))
}

/// The name of `code` of `field` of `t`, if the table has one.
pub fn code(t: RecordType, field: &str, code: &str) -> Option<Label> {
    let name = |key: &str| {
        CODES
            .iter()
            .find(|(k, c, _, _)| *k == key && *c == code)
            .map(|(_, _, vi, en)| (*vi, *en))
    };
    name(&format!("{t}.{field}")).or_else(|| name(field))
}

/// The name of a review state, as the record list shows it.
pub fn review(phase: fieldsync_core::record::ReviewPhase) -> Label {
    use fieldsync_core::record::ReviewPhase as R;
    match phase {
        R::Pending => ("Chờ duyệt", "Pending"),
        R::Approved => ("Đã duyệt", "Approved"),
        R::Returned => ("Đã trả lại", "Returned"),
        R::Changed => ("Đã sửa sau khi duyệt", "Changed after approval"),
    }
}

/// The name of a record's status in the merged view (`active`, `deleted`, `merged`).
pub fn status(status: &str) -> Label {
    match status {
        "deleted" => ("Đã xoá", "Deleted"),
        "merged" => ("Đã gộp", "Merged"),
        _ => ("Đang dùng", "Active"),
    }
}

/// Yes and no, for a field that is either.
pub fn yes_no(yes: bool) -> Label {
    if yes {
        ("Có", "Yes")
    } else {
        ("Không", "No")
    }
}
