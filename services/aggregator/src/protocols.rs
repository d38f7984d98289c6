//! Protocol names of the byte completions, one per RPC: the payload is the prost encoding of the
//! RPC's request message, the completion the encoding of its response.

/// `CreateRound`.
pub const CREATE_ROUND: &str = "veilgrid/agg/create_round/v1";
/// `GetRound`.
pub const GET_ROUND: &str = "veilgrid/agg/get_round/v1";
/// `Submit`.
pub const SUBMIT: &str = "veilgrid/agg/submit/v1";
/// `MemberWork`.
pub const MEMBER_WORK: &str = "veilgrid/agg/member_work/v1";
/// `MemberCheck`.
pub const MEMBER_CHECK: &str = "veilgrid/agg/member_check/v1";
/// `MemberRespond`.
pub const MEMBER_RESPOND: &str = "veilgrid/agg/member_respond/v1";
/// `Result`.
pub const RESULT: &str = "veilgrid/agg/result/v1";
/// `ListRounds`.
pub const LIST_ROUNDS: &str = "veilgrid/agg/list_rounds/v1";
/// Served by committee members: their lease publishes the X25519 key clients seal shares to.
/// The completion of any payload is the member's 32-byte sealing key.
pub const MEMBER: &str = "veilgrid/agg/member/v1";

/// Every protocol the aggregation server completes.
pub const SERVER_PROTOCOLS: [&str; 8] = [
    CREATE_ROUND,
    GET_ROUND,
    SUBMIT,
    MEMBER_WORK,
    MEMBER_CHECK,
    MEMBER_RESPOND,
    RESULT,
    LIST_ROUNDS,
];
