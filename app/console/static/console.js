/* Sentinel operations console: sign-in, sources, live events, episodes, incidents (acknowledge, silence a source), schedules & silences, LLM, cache, health,
   the knowledge assistant (ask, citations, feedback) and its documents (upload, import jobs).
   Plain JS, no build step, nothing loaded from another host. Every API call carries the
   user's bearer token (the live feed and streamed answers use fetch() streaming because
   EventSource cannot send an Authorization header). Model and document text is only ever
   set as text (textContent / text nodes), never parsed as HTML. */
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "sentinel.console.token";
const LANG_KEY = "sentinel.console.lang";
const FEED_MAX = 200;
const REFRESH_MS = 5000;
const JOB_POLL_MS = 500;
const DOC_PAGE = 50;
const BACKLOG = 50; // recent events shown when the Live view opens
const EP_EVENTS = 50; // events per page in the episode detail

const I18N = {
  en: {
    console: "console", signIn: "Sign in", signOut: "Sign out", email: "Email", password: "Password",
    devMode: "Development mode: the API is open, no sign-in needed.",
    overview: "Overview", sources: "Sources", live: "Live", episodes: "Episodes", alerts: "Alerts",
    health: "Health", llmModels: "LLM models", cache: "Answer cache", liveFeed: "Live events",
    source: "Source", state: "State", lastSeen: "Last seen", lastEvent: "Last event", openEpisode: "Open episode",
    online: "online", offline: "offline", none: "none", component: "Component", status: "Status", detail: "Detail",
    model: "Model", cooldown: "Cooldown", until: "until", available: "available", cooling: "cooling",
    disabled: "disabled", calls: "Calls", successes: "Successes", fallbacks: "Fallbacks", tokens: "Tokens in/out",
    exactHits: "Exact hits", semanticHits: "Semantic hits", misses: "Misses", hitRate: "Hit rate",
    localAnswers: "Local answers", adminOnly: "Usage counters are for administrators.",
    noModels: "No LLM configured: answers are extracted locally.",
    started: "Started", ended: "Ended", decision: "Verdict", score: "Score", label: "Label", events: "Events",
    alert: "Alert", event: "Event", episode: "Episode closed", attempts: "Attempts", lastError: "Last error", created: "Created", sent: "Sent",
    empty: "Nothing yet.", connecting: "connecting", connected: "live", reconnecting: "reconnecting",
    badLogin: "Sign-in failed: check your email and password.", sessionEnded: "Your session ended; sign in again.",
    loadFailed: "Could not load", ago: "ago", s: "s", m: "min", h: "h", d: "d",
    open: "open", closed: "closed", normal: "normal", abnormal: "abnormal", unknown: "unknown",
    pending: "pending", sending: "sending", failed: "failed", suppressed: "suppressed",
    undeliverable: "undeliverable", healthy: "healthy", degraded: "degraded", down: "down", unhealthy: "unhealthy",
    ok: "ok",
    ask: "Ask", documents: "Documents", askTitle: "Ask the knowledge base", question: "Question",
    askPlaceholder: "Ask about procedures, manuals or recent events…", askSend: "Ask",
    newConversation: "New conversation", history: "Conversations", close: "Close",
    citations: "Sources", answering: "Answering…", cachedAnswer: "cached answer",
    localAnswer: "extracted from the documents", noAnswerFound: "Nothing in the documents answers this.",
    closest: "Closest documents", helpful: "Helpful", notHelpful: "Not helpful",
    commentPlaceholder: "What was wrong or missing? (optional)",
    rightDocument: "Document that should have answered (optional)", noDocument: "— none —",
    sendFeedback: "Send", cancel: "Cancel", feedbackSaved: "Thanks, your feedback is saved.",
    ratedUp: "You rated this helpful.", ratedDown: "You rated this not helpful.",
    passageFromDocument: "Past answers do not keep the passage text: this is the document from that heading.",
    documentGone: "This document is no longer in the knowledge base.",
    askFailed: "Could not get an answer", streamBroke: "The answer stopped before it was finished",
    partial: "Received so far", pageN: "p. {page}", turnsNone: "No conversations yet.",
    title: "Title", chunks: "Passages", indexed: "Indexed", updated: "Updated", yes: "yes", no: "no",
    delete: "Delete", confirmDelete: "Delete “{title}” and its passages? This cannot be undone.",
    uploadTitle: "Add documents", upload: "Upload", chooseFiles: "Choose at least one file.",
    uploadHint: "Markdown, text, PDF, Word (.docx), Hangul (.hwp, .hwpx), or a .zip of them.",
    queued: "queued", running: "running", retrying: "retrying", succeeded: "done",
    importDone: "{documents} documents stored ({chunks} passages) from {files} files.",
    skippedFiles: "Skipped files", file: "File", reason: "Reason", more: "More",
    adminOnlyDocs: "Only administrators can add or delete documents.", importFailed: "Import failed",
    sourceCol: "Source",
    feedback: "Feedback", outcome_false_alarm: "false alarm", outcome_miss: "miss",
    outcome_confirmed: "confirmed", outcome_undecided: "undecided",
    lbl_badminton: "badminton", lbl_running: "running", lbl_standing: "standing", lbl_walking: "walking",
    labelAs: "Label this episode “{label}”", feedbackBy: "labelled by {by}, {at}",
    models: "Models", modelVersions: "Model versions", version: "Version", origin: "Origin",
    shipped: "shipped", retrained: "retrained", active: "active", candidate: "candidate", retired: "retired",
    baseTest: "Test-set accuracy", holdout: "Feedback holdout accuracy", falseAlarmsMisses: "False alarms / misses",
    trainedOn: "Trained on", vsActive: "active then: {value}", testShort: "test", feedbackShort: "feedback",
    trainedOnText: "{feedback} feedback episodes ({held} held out), {base} base sequences",
    retrain: "Retrain", trainWithFeedback: "Train with feedback",
    trainHint: "Trains a candidate on the shipped data plus the episodes operators labelled. The candidate is not used until someone activates it.",
    trainJob: "Job {id}", trainDone: "New candidate {version} trained in {seconds} s.", trainFailed: "Training failed",
    activate: "Activate", rollBack: "Roll back", activateAnyway: "Activate anyway",
    activated: "{version} is now active.", gateTitle: "This version did not pass the quality gate",
    gateSet: "Figures", gateCandidate: "Candidate", gateActive: "Active",
    modelsForbidden: "Model versions are for operators and administrators.",
    adminOnlyModels: "Only administrators can train or activate models.",
    feedbackSummary: "Operator feedback", labelled: "Labelled", falseAlarms: "False alarms", missesCol: "Misses",
    withSequence: "With frames", falseAlarmRate: "False-alarm rate", allSources: "All sources",
    incidents: "Incidents", kind: "Kind", alertCount: "Alerts", maxScore: "Max score", opened: "Opened",
    lastAlert: "Last alert", acknowledged: "Acknowledged", ackedBy: "{by} via {via}", ackedByChannel: "{by} via {via} ({channel})",
    resolved: "resolved", details: "Details", hideDetails: "Hide",
    message: "Message", deliveries: "Deliveries", channel: "Channel", stage: "Stage", noDeliveries: "No messages were sent for this incident.",
    ackAction: "Ack", silenceAction: "Silence this source", silenceFor: "Silence {source} for",
    hours1: "1 h", hours4: "4 h", hours24: "24 h", silencedUntil: "silenced until {until}",
    ackDone: "Incident acknowledged.", silenceDone: "{source} is silenced until {until}.",
    via_api: "API", via_console: "console", via_link: "link",
    kind_abnormal_episode: "abnormal behaviour", kind_source_offline: "source offline",
    kind_source_recovered: "source recovered", kind_delivery_failure: "delivery failure", kind_job_failed: "job failed",
    kind_source_flapping: "source flapping", kind_maintenance_reminder: "maintenance ending",
    kind_maintenance_summary: "maintenance summary", kind_digest: "shift digest",
    stage_notify: "first message", stage_update: "update {n}", stage_resolve: "resolved", stage_escalation: "escalation step {n}",
    cancelled: "cancelled", grouped: "grouped", inhibited: "inhibited", silenced: "silenced",
    err_acknowledged: "acknowledged", err_acknowledgedAt: "acknowledged at {at}",
    err_gaveUp: "gave up after {n} attempts: {rest}", err_notConfigured: "{channel} is not configured: {rest}",
    alertsDegraded: "Alert delivery is degraded", alertsDown: "Alert delivery is down",
    alertsRecordOnly: "Alerts are recorded only (not sent)",
    schedulesSilences: "Schedules & silences", schedules: "Schedules", silences: "Silences",
    name: "Name", weekdays: "Weekdays", times: "Times", exceptions: "Exceptions", schedule: "Schedule",
    pattern: "Source (pattern)", from: "From", createdBy: "Created by", endNow: "End now",
    silenceEnded: "The silence on {source} has ended.", expired: "ended",
    noSchedules: "No schedules defined.", silenceActive: "active", endsAt: "Until", timezone: "Time zone", now: "Now", runs: "runs", idle: "idle", skipped: "off",
    wd_mon: "Mon", wd_tue: "Tue", wd_wed: "Wed", wd_thu: "Thu", wd_fri: "Fri", wd_sat: "Sat", wd_sun: "Sun",
    // Episode detail, the live backlog and the recent alerts table (issue 26, point 7).
    openEpisodeDetail: "Open", episodeDetail: "Episode", duration: "Duration", closeReason: "Closed by",
    probsCount: "PROBS events", frames: "Frames", modelVersion: "Model version", type: "Type", topClass: "Top class",
    time: "Time", id: "ID", noEvents: "No events stored for this episode.", stillOpen: "still open",
    backlog: "earlier events", recentAlerts: "Recent alerts", st_partial: "partly sent", occurred: "Occurred",
    in: "in {when}", seconds: "{n} s", minutes: "{n} min", hours: "{n} h", days: "{n} d",
    err_recordOnly: "ALERT_CHANNELS is empty: alerts are recorded only, nothing is sent; set ALERT_CHANNELS ({channels}) and the channel's settings",
    err_noRoute: "no route sends {kind} alerts from this source to an enabled channel (see GET /api/v1/alerts/routes)",
    err_silencedUntil: "silenced by {id} until {until}", err_silencedSchedule: "silenced by {id} while schedule {schedule} runs",
    err_inhibited: "inhibited: {source} offline since {since} (outage alert {id})",
    err_flapping: "flapping since {since}: quiet until stable for FLAP_WINDOW_SECS={n}",
    err_joined: "joined incident {id} (opened {at})", err_cooldown: "cooldown: alert {id} for this source at {at}",
    err_budgetSource: "budget: {count} alerts from this source in the last hour reached ALERT_MAX_PER_SOURCE_PER_HOUR={cap}",
    err_budgetAll: "budget: {count} alerts in the last hour reached ALERT_MAX_PER_HOUR={cap}",
    err_internal: "internal error: {name}", err_timedOut: "{what} timed out", err_unreachable: "{what} unreachable: {name}",
    err_answered: "{what} answered {code}", err_answeredBody: "{what} answered {code}: {body}",
    err_failedHttp: "{what} failed: HTTP {code}, {rest}", err_unexpectedBody: "{what} returned an unexpected body: {body}",
    err_set: "set {names}", err_kakaoRefresh: "(and {refresh} with {key} for automatic refresh)",
    err_kakaoExpired: "Kakao access token expired and no refresh is possible: set KAKAO_REFRESH_TOKEN and KAKAO_REST_API_KEY, or a new KAKAO_ACCESS_TOKEN",
    err_smtpLogin: "SMTP login refused ({code})", err_smtpRecipients: "SMTP server refused the recipients ({codes})",
    what_webhook: "webhook", what_slack: "Slack webhook", what_smtp: "SMTP server", what_memo: "Kakao memo send",
    what_refresh: "Kakao token refresh", what_tokenInfo: "Kakao token info", what_userInfo: "Kakao user info",
    ch_webhook: "the webhook", ch_slack: "Slack", ch_email: "e-mail", ch_kakao: "Kakao",
    // The /health reasons shown in the alerts banner (app/services/alerts.py).
    err_channelUnconfigured: "{channel} is in ALERT_CHANNELS but not configured: {rest}",
    err_noneConfigured: "no channel in ALERT_CHANNELS ({names}) is configured: alerts would go nowhere",
    err_failingStreak: "{channel} failed its last {n} deliveries: {rest}",
    cr_end: "its END", cr_superseded: "a new START", cr_end_without_start: "an END with no START",
  },
  ko: {
    console: "운영 콘솔", signIn: "로그인", signOut: "로그아웃", email: "이메일", password: "비밀번호",
    devMode: "개발 모드: API가 열려 있어 로그인하지 않아도 됩니다.",
    overview: "개요", sources: "소스", live: "실시간", episodes: "에피소드", alerts: "알림",
    health: "상태", llmModels: "LLM 모델", cache: "답변 캐시", liveFeed: "실시간 이벤트",
    source: "소스", state: "상태", lastSeen: "마지막 수신", lastEvent: "마지막 이벤트", openEpisode: "진행 중 에피소드",
    online: "온라인", offline: "오프라인", none: "없음", component: "구성 요소", status: "상태", detail: "세부",
    model: "모델", cooldown: "쿨다운", until: "종료", available: "사용 가능", cooling: "쿨다운 중",
    disabled: "비활성", calls: "호출", successes: "성공", fallbacks: "대체", tokens: "토큰 입력/출력",
    exactHits: "정확 일치", semanticHits: "의미 일치", misses: "미스", hitRate: "적중률",
    localAnswers: "로컬 답변", adminOnly: "사용량 통계는 관리자만 볼 수 있습니다.",
    noModels: "설정된 LLM이 없습니다: 답변은 로컬에서 추출됩니다.",
    started: "시작", ended: "종료", decision: "판정", score: "점수", label: "라벨", events: "이벤트",
    alert: "알림", event: "이벤트", episode: "에피소드 종료", attempts: "시도", lastError: "마지막 오류", created: "생성", sent: "발송",
    empty: "아직 없습니다.", connecting: "연결 중", connected: "연결됨", reconnecting: "재연결 중",
    badLogin: "로그인 실패: 이메일과 비밀번호를 확인하세요.", sessionEnded: "세션이 끝났습니다. 다시 로그인하세요.",
    loadFailed: "불러오지 못함", ago: "전", s: "초", m: "분", h: "시간", d: "일",
    open: "진행 중", closed: "종료", normal: "정상", abnormal: "이상", unknown: "알 수 없음",
    pending: "대기", sending: "발송 중", failed: "실패", suppressed: "억제됨",
    undeliverable: "발송 불가", healthy: "정상", degraded: "저하", down: "중단", unhealthy: "비정상",
    ok: "정상",
    ask: "질문하기", documents: "문서", askTitle: "지식 베이스에 질문하기", question: "질문",
    askPlaceholder: "절차, 매뉴얼, 최근 이벤트에 대해 물어보세요…", askSend: "질문하기",
    newConversation: "새 대화", history: "대화 기록", close: "닫기",
    citations: "출처", answering: "답변을 작성하는 중…", cachedAnswer: "저장된 답변",
    localAnswer: "문서에서 발췌한 답변", noAnswerFound: "문서에서 이 질문에 대한 답을 찾지 못했습니다.",
    closest: "가장 가까운 문서", helpful: "도움이 됐어요", notHelpful: "도움이 안 됐어요",
    commentPlaceholder: "틀리거나 빠진 내용이 있었나요? (선택)",
    rightDocument: "답이 들어 있는 문서 (선택)", noDocument: "— 선택 안 함 —",
    sendFeedback: "보내기", cancel: "취소", feedbackSaved: "의견을 저장했습니다. 감사합니다.",
    ratedUp: "도움이 됐다고 평가했습니다.", ratedDown: "도움이 안 됐다고 평가했습니다.",
    passageFromDocument: "지난 답변에는 인용 구절이 저장되지 않아, 해당 제목 부분부터 문서를 보여 드립니다.",
    documentGone: "이 문서는 지식 베이스에서 삭제되었습니다.",
    askFailed: "답변을 받지 못했습니다", streamBroke: "답변이 끝나기 전에 끊겼습니다",
    partial: "끊기기 전까지 받은 내용", pageN: "{page}쪽", turnsNone: "아직 대화가 없습니다.",
    title: "제목", chunks: "구절 수", indexed: "색인", updated: "수정", yes: "완료", no: "안 됨",
    delete: "삭제", confirmDelete: "“{title}” 문서와 구절을 모두 삭제할까요? 되돌릴 수 없습니다.",
    uploadTitle: "문서 추가", upload: "올리기", chooseFiles: "파일을 하나 이상 고르세요.",
    uploadHint: "마크다운, 텍스트, PDF, 워드(.docx), 한글(.hwp, .hwpx) 파일이나 이를 묶은 .zip 파일을 올릴 수 있습니다.",
    queued: "대기 중", running: "진행 중", retrying: "재시도 중", succeeded: "완료",
    importDone: "파일 {files}개에서 문서 {documents}개(구절 {chunks}개)를 저장했습니다.",
    skippedFiles: "건너뛴 파일", file: "파일", reason: "사유", more: "더 보기",
    adminOnlyDocs: "문서 추가와 삭제는 관리자만 할 수 있습니다.", importFailed: "가져오기 실패",
    sourceCol: "출처",
    feedback: "피드백", outcome_false_alarm: "오탐", outcome_miss: "미탐",
    outcome_confirmed: "확인됨", outcome_undecided: "판정 전",
    lbl_badminton: "배드민턴", lbl_running: "달리기", lbl_standing: "서 있기", lbl_walking: "걷기",
    labelAs: "이 에피소드를 “{label}”(으)로 표시", feedbackBy: "{by}, {at}에 표시",
    models: "모델", modelVersions: "모델 버전", version: "버전", origin: "출처",
    shipped: "기본 제공", retrained: "재학습", active: "사용 중", candidate: "후보", retired: "이전",
    baseTest: "테스트셋 정확도", holdout: "피드백 검증 정확도", falseAlarmsMisses: "오탐 / 미탐",
    trainedOn: "학습 데이터", vsActive: "당시 사용 모델: {value}", testShort: "테스트", feedbackShort: "피드백",
    trainedOnText: "피드백 에피소드 {feedback}개(검증용 {held}개), 기본 시퀀스 {base}개",
    retrain: "재학습", trainWithFeedback: "피드백으로 재학습",
    trainHint: "기본 학습 데이터에 운영자가 표시한 에피소드를 더해 후보 모델을 학습합니다. 후보 모델은 적용하기 전까지 쓰이지 않습니다.",
    trainJob: "작업 {id}", trainDone: "새 후보 모델 {version}을(를) {seconds}초 만에 학습했습니다.", trainFailed: "학습 실패",
    activate: "적용", rollBack: "되돌리기", activateAnyway: "그래도 적용",
    activated: "이제 {version} 모델을 사용합니다.", gateTitle: "이 버전은 품질 기준을 통과하지 못했습니다",
    gateSet: "지표", gateCandidate: "후보", gateActive: "사용 중",
    modelsForbidden: "모델 버전은 운영자와 관리자만 볼 수 있습니다.",
    adminOnlyModels: "모델 학습과 적용은 관리자만 할 수 있습니다.",
    feedbackSummary: "운영자 피드백", labelled: "표시한 에피소드", falseAlarms: "오탐", missesCol: "미탐",
    withSequence: "프레임 있음", falseAlarmRate: "오탐률", allSources: "전체 소스",
    incidents: "인시던트", kind: "종류", alertCount: "알림 수", maxScore: "최고 점수", opened: "시작",
    lastAlert: "마지막 알림", acknowledged: "확인함", ackedBy: "{by} ({via})", ackedByChannel: "{by} ({via}, {channel})",
    resolved: "해결됨", details: "자세히", hideDetails: "접기",
    message: "메시지", deliveries: "발송", channel: "채널", stage: "단계", noDeliveries: "이 인시던트로 보낸 메시지가 없습니다.",
    ackAction: "확인", silenceAction: "이 소스 무음", silenceFor: "{source} 무음 기간",
    hours1: "1시간", hours4: "4시간", hours24: "24시간", silencedUntil: "{until}까지 무음",
    ackDone: "인시던트를 확인했습니다.", silenceDone: "{source}을(를) {until}까지 무음으로 설정했습니다.",
    via_api: "API", via_console: "콘솔", via_link: "링크",
    kind_abnormal_episode: "이상 행동", kind_source_offline: "소스 오프라인",
    kind_source_recovered: "소스 복구", kind_delivery_failure: "발송 실패", kind_job_failed: "작업 실패",
    kind_source_flapping: "소스 불안정", kind_maintenance_reminder: "점검 종료 예정",
    kind_maintenance_summary: "점검 요약", kind_digest: "교대 요약",
    stage_notify: "첫 알림", stage_update: "갱신 {n}", stage_resolve: "해결", stage_escalation: "에스컬레이션 {n}단계",
    cancelled: "취소됨", grouped: "묶임", inhibited: "억제됨(상위 장애)", silenced: "무음",
    err_acknowledged: "확인됨", err_acknowledgedAt: "{at}에 확인됨",
    err_gaveUp: "{n}회 시도 후 포기: {rest}", err_notConfigured: "{channel} 설정이 없습니다: {rest}",
    alertsDegraded: "알림 발송 상태 저하", alertsDown: "알림 발송 중단",
    alertsRecordOnly: "알림은 기록만 되고 발송되지 않습니다",
    schedulesSilences: "일정·무음", schedules: "일정", silences: "무음",
    name: "이름", weekdays: "요일", times: "시간", exceptions: "예외", schedule: "일정",
    pattern: "소스(패턴)", from: "시작", createdBy: "설정한 사람", endNow: "지금 종료",
    silenceEnded: "{source} 무음을 종료했습니다.", expired: "종료됨",
    noSchedules: "정의된 일정이 없습니다.", silenceActive: "적용 중", endsAt: "종료 시각", timezone: "시간대", now: "지금", runs: "적용 중", idle: "대기", skipped: "쉼",
    wd_mon: "월", wd_tue: "화", wd_wed: "수", wd_thu: "목", wd_fri: "금", wd_sat: "토", wd_sun: "일",
    openEpisodeDetail: "열기", episodeDetail: "에피소드", duration: "지속 시간", closeReason: "종료 사유",
    probsCount: "PROBS 이벤트", frames: "프레임", modelVersion: "모델 버전", type: "유형", topClass: "최고 확률",
    time: "시각", id: "ID", noEvents: "이 에피소드에 저장된 이벤트가 없습니다.", stillOpen: "진행 중",
    backlog: "이전 이벤트", recentAlerts: "최근 알림", st_partial: "일부 발송", occurred: "발생",
    in: "{when} 후", seconds: "{n}초", minutes: "{n}분", hours: "{n}시간", days: "{n}일",
    err_recordOnly: "ALERT_CHANNELS가 비어 있어 알림은 기록만 되고 발송되지 않습니다. ALERT_CHANNELS({channels})와 해당 채널 설정을 지정하세요",
    err_noRoute: "이 소스의 {kind} 알림을 활성 채널로 보내는 경로가 없습니다 (GET /api/v1/alerts/routes 참고)",
    err_silencedUntil: "무음 {id}에 따라 {until}까지 보내지 않음", err_silencedSchedule: "무음 {id}에 따라 일정 {schedule} 동안 보내지 않음",
    err_inhibited: "억제됨: {source}이(가) {since}부터 오프라인 (장애 알림 {id})",
    err_flapping: "{since}부터 상태가 자주 바뀜: FLAP_WINDOW_SECS={n}초 동안 안정될 때까지 보내지 않음",
    err_joined: "인시던트 {id}에 묶임 ({at} 시작)", err_cooldown: "쿨다운: 이 소스의 알림 {id}이(가) {at}에 있었음",
    err_budgetSource: "한도: 최근 1시간 이 소스의 알림 {count}건이 ALERT_MAX_PER_SOURCE_PER_HOUR={cap}에 도달",
    err_budgetAll: "한도: 최근 1시간 알림 {count}건이 ALERT_MAX_PER_HOUR={cap}에 도달",
    err_internal: "내부 오류: {name}", err_timedOut: "{what} 응답 시간 초과", err_unreachable: "{what}에 연결할 수 없음: {name}",
    err_answered: "{what} 응답 {code}", err_answeredBody: "{what} 응답 {code}: {body}",
    err_failedHttp: "{what} 실패: HTTP {code}, {rest}", err_unexpectedBody: "{what}에서 예상하지 못한 응답: {body}",
    err_set: "{names}을(를) 설정하세요", err_kakaoRefresh: "(자동 갱신에는 {refresh}와(과) {key} 필요)",
    err_kakaoExpired: "Kakao 액세스 토큰이 만료되었고 갱신할 수 없습니다: KAKAO_REFRESH_TOKEN과 KAKAO_REST_API_KEY를 설정하거나 새 KAKAO_ACCESS_TOKEN을 설정하세요",
    err_smtpLogin: "SMTP 로그인 거부 ({code})", err_smtpRecipients: "SMTP 서버가 수신자를 거부함 ({codes})",
    what_webhook: "웹훅", what_slack: "Slack 웹훅", what_smtp: "SMTP 서버", what_memo: "Kakao 메모 발송",
    what_refresh: "Kakao 토큰 갱신", what_tokenInfo: "Kakao 토큰 정보 조회", what_userInfo: "Kakao 사용자 정보 조회",
    ch_webhook: "웹훅", ch_slack: "Slack", ch_email: "이메일", ch_kakao: "Kakao",
    err_channelUnconfigured: "{channel}이(가) ALERT_CHANNELS에 있지만 설정되지 않았습니다: {rest}",
    err_noneConfigured: "ALERT_CHANNELS의 채널({names}) 중 설정된 것이 없어 알림이 아무 데도 가지 않습니다",
    err_failingStreak: "{channel} 채널의 최근 발송 {n}건이 모두 실패: {rest}",
    cr_end: "END 수신", cr_superseded: "새 START 수신", cr_end_without_start: "START 없는 END",
  },
};

const state = {
  lang: pickLanguage(),
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  open: false, // development mode: the API needs no token
  view: "overview",
  stream: null,
  timer: null,
  role: "", // the signed-in user's role ("" when unknown); development mode acts as admin
  conversation: null, // the Ask view's conversation id (follow-ups continue it)
  asking: false,
  docs: { items: [], next: null, total: 0 },
  pickable: null, // documents for the 👎 "right document" picker, loaded once when needed
  // The alerts tab: incidents shown, which are expanded (and their details), silences in force,
  // the incident whose "silence for…" choice is open, and what was last drawn.
  incidents: { items: [], next: null, expanded: new Set(), details: {}, silences: [], picking: null, rendered: "" },
  alertsRendered: "", // what the recent alerts table last drew
  episode: null, // the episode whose detail is open: { id, data, events, next, rendered }
  labels: null, // the active model's labels (for the label buttons in the episode detail)
};

function pickLanguage() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved === "ko" || saved === "en") return saved;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  for (const l of langs) {
    const base = String(l).toLowerCase().slice(0, 2);
    if (base === "ko" || base === "en") return base;
  }
  return "en";
}

function t(key, params) {
  let text = (I18N[state.lang] && I18N[state.lang][key]) || I18N.en[key] || key;
  for (const [name, value] of Object.entries(params || {})) text = text.split("{" + name + "}").join(String(value));
  return text;
}

function isAdmin() {
  return state.open || state.role === "admin";
}

/** Operators and admins label episodes (development mode too); viewers only read the labels. */
function canLabel() {
  return state.open || state.role === "operator" || state.role === "admin";
}

/** A behaviour label in the page's language; a label the console does not know stays as is. */
function labelName(label) {
  return I18N.en["lbl_" + label] ? t("lbl_" + label) : String(label);
}

function $(id) { return document.getElementById(id); }

/** Build an element; children are nodes or strings (always text, never HTML). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function pill(value, kind) {
  return el("span", { class: "pill " + (kind || "") }, t(value));
}

function statusKind(value) {
  if (["healthy", "ok", "online", "sent", "normal", "available", "closed", "disabled_by_config", "succeeded"].includes(value)) return "ok";
  if (["degraded", "pending", "sending", "cooling", "open", "suppressed", "unknown", "queued", "running", "retrying"].includes(value)) return "warn";
  if (["down", "unhealthy", "offline", "failed", "undeliverable", "abnormal", "disabled"].includes(value)) return "bad";
  return "";
}

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return "—";
  return d.toLocaleString(state.lang === "ko" ? "ko-KR" : "en-GB", { hour12: false });
}

function fmtAgo(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.round(seconds));
  let text;
  if (s < 60) text = s + t("s");
  else if (s < 3600) text = Math.floor(s / 60) + t("m");
  else if (s < 86400) text = Math.floor(s / 3600) + t("h");
  else text = Math.floor(s / 86400) + t("d");
  return state.lang === "ko" ? text + " " + t("ago") : text + " " + t("ago");
}

function pct(part, total) {
  return total > 0 ? (100 * part / total).toFixed(1) + "%" : "—";
}

/** A table whose cells carry their column label (shown on phone width). */
function table(columns, rows) {
  if (!rows.length) return el("p", { class: "empty" }, t("empty"));
  const head = el("tr", {}, columns.map((c) => el("th", {}, t(c))));
  const body = rows.map((cells) =>
    el("tr", {}, cells.map((cell, i) => el("td", { "data-label": t(columns[i]) }, cell))));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, body));
}

function fill(id, node) {
  const target = $(id);
  target.replaceChildren(node);
}

// --- API ---------------------------------------------------------------------------------

class AuthError extends Error {}

function headers(extra) {
  const h = Object.assign({ "Accept-Language": state.lang }, extra || {});
  if (state.token) h.Authorization = "Bearer " + state.token;
  return h;
}

/** The error body's `detail` (already in the page's language: Accept-Language), else the status.
    The whole body stays on `err.body` (e.g. the model gate's figures). */
async function errorOf(response) {
  let detail = response.status + "";
  let code = "";
  let body = null;
  try {
    body = await response.json();
    if (typeof body.detail === "string") detail = body.detail;
    code = body.code || "";
    if (body.error && typeof body.error === "object") { // {"error": {"code", "message"}}
      if (typeof body.error.message === "string") detail = body.error.message;
      code = body.error.code || code;
    }
  } catch (e) { /* not JSON */ }
  const err = new Error(detail);
  err.status = response.status;
  err.code = code;
  err.body = body;
  return err;
}

async function api(path, options) {
  const response = await fetch(path.startsWith("/") ? path : API + "/" + path, Object.assign({ headers: headers() }, options || {}));
  if (response.status === 401) throw new AuthError(t("sessionEnded"));
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  return response.json();
}

function postJson(path, body) {
  return api(path, { method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body) });
}

function failed(id, err) {
  if (err instanceof AuthError) return signOut(t("sessionEnded"));
  fill(id, el("p", { class: "error" }, t("loadFailed") + ": " + err.message));
}

// --- views -------------------------------------------------------------------------------

async function loadHealth() {
  try {
    const report = await api("/health");
    const rows = Object.entries(report.services || {}).map(([name, info]) => {
      const bits = [];
      if (info.latency_ms !== undefined) bits.push(info.latency_ms + " ms");
      if (info.error) bits.push(info.error);
      if (info.pending !== undefined) bits.push(t("pending") + " " + info.pending);
      return [name, pill(info.status, info.status === "disabled" ? "" : statusKind(info.status)), el("span", { class: "muted" }, bits.join(" · "))];
    });
    fill("health", el("div", {},
      el("p", {}, pill(report.status, statusKind(report.status)), " ", el("span", { class: "muted" }, [report.version, report.environment].filter(Boolean).join(" · "))),
      table(["component", "status", "detail"], rows)));
    return report;
  } catch (err) { failed("health", err); return null; }
}

async function loadLlm(report) {
  const fetchedAt = Date.now();
  let stats = null;
  let forbidden = false;
  try { stats = await api("admin/llm/stats"); } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    forbidden = err.status === 403;
  }
  const llm = (report && report.services && report.services.llm) || {};
  const chain = stats ? stats.chain : (llm.chain || []);
  const cooling = llm.cooling_down || {};
  const disabled = llm.disabled || {};
  const byKey = {};
  for (const m of (stats ? stats.models : [])) byKey[m.provider + ":" + m.model] = m;
  if (!chain.length) fill("llm", el("p", { class: "empty" }, t("noModels")));
  else {
    const rows = chain.map((key) => {
      const m = byKey[key] || {};
      const left = m.cooldown_remaining_secs || cooling[key] || 0;
      let st = "available";
      if (m.disabled || disabled[key]) st = "disabled";
      else if (left > 0) st = "cooling";
      const until = left > 0 ? t("until") + " " + fmtTime(new Date(fetchedAt + left * 1000).toISOString()) + " (" + Math.ceil(left) + t("s") + ")" : "—";
      return [key, pill(st, statusKind(st)), until,
        stats ? String(m.calls || 0) : "—", stats ? String(m.fallbacks || 0) : "—",
        stats ? (m.tokens_in || 0) + " / " + (m.tokens_out || 0) : "—"];
    });
    fill("llm", table(["model", "state", "cooldown", "calls", "fallbacks", "tokens"], rows));
  }
  if (stats) {
    const c = stats.cache || {};
    const total = (c.exact_hits || 0) + (c.semantic_hits || 0) + (c.misses || 0);
    fill("cache", table(["cache", "calls", "hitRate"], [
      [t("exactHits"), String(c.exact_hits || 0), pct(c.exact_hits || 0, total)],
      [t("semanticHits"), String(c.semantic_hits || 0), pct(c.semantic_hits || 0, total)],
      [t("misses"), String(c.misses || 0), pct(c.misses || 0, total)],
      [t("localAnswers"), String(stats.local_answers || 0), "—"],
    ]));
  } else {
    fill("cache", el("p", { class: "muted" }, forbidden ? t("adminOnly") : t("loadFailed")));
  }
}

async function loadOverview() {
  const report = await loadHealth();
  await loadLlm(report);
}

async function loadSources() {
  try {
    const [sources, open] = await Promise.all([api("sources?limit=500"), api("episodes?status=open&limit=500")]);
    const openBySource = {};
    for (const ep of open.items) if (!openBySource[ep.source_id]) openBySource[ep.source_id] = ep;
    const rows = sources.items.map((s) => {
      const ep = openBySource[s.source_id];
      return [
        el("strong", { class: "source-id" }, s.source_id),
        pill(s.online ? "online" : "offline", s.online ? "ok" : "bad"),
        el("span", { title: fmtTime(s.last_seen) }, fmtAgo(s.seconds_since_seen)),
        s.last_event_type || "—",
        ep ? el("span", {}, fmtTime(ep.started_at) + " · " + ep.event_count + " " + t("events")) : el("span", { class: "muted" }, t("none")),
      ];
    });
    fill("sources", table(["source", "state", "lastSeen", "lastEvent", "openEpisode"], rows));
  } catch (err) { failed("sources", err); }
}

async function loadEpisodes() {
  try {
    // The active model's labels, once per refresh (no model: the feedback column just reads).
    const [page, model] = await Promise.all([
      api("episodes?limit=50"),
      api("behavior/model").catch((err) => { if (err instanceof AuthError) throw err; return null; }),
    ]);
    const labels = (model && model.labels) || [];
    const normal = new Set((model && model.normal_labels) || []);
    state.labels = { labels, normal };
    const rows = page.items.map((e) => {
      const open = el("button", { type: "button", class: "link episode-open", "data-id": e.id, title: t("openEpisodeDetail") }, e.source_id);
      open.addEventListener("click", () => openEpisode(e.id));
      return [
        open,
        pill(e.status, statusKind(e.status)),
        e.decision ? pill(e.decision, statusKind(e.decision)) : "—",
        scoreText(e),
        e.top_label ? labelName(e.top_label) : "—",
        String(e.event_count),
        fmtTime(e.started_at),
        fmtTime(e.ended_at),
        e.alert_status ? statusPill(e.alert_status) : "—",
        feedbackCell(e, labels, normal),
      ];
    });
    fill("episodes", table(["source", "status", "decision", "score", "label", "events", "started", "ended", "alert", "feedback"], rows));
    const trs = $("episodes").querySelectorAll("tbody tr");
    page.items.forEach((e, i) => {
      trs[i].classList.add("episode-row");
      trs[i].classList.toggle("current", !!state.episode && state.episode.id === e.id);
      trs[i].dataset.id = e.id;
      // A click anywhere on the row but its buttons (the label buttons save feedback) opens it.
      trs[i].addEventListener("click", (event) => { if (!event.target.closest("button")) openEpisode(e.id); });
    });
    // An open episode still grows: its detail follows (closed ones only change by feedback).
    const ep = state.episode;
    const listed = ep && ep.data ? page.items.find((e) => e.id === ep.id) : null;
    const facts = (e) => JSON.stringify([e.status, e.feedback, e.alert_status, e.event_count]);
    if (ep && ep.data && (ep.data.status === "open" || (listed && facts(listed) !== facts(ep.data)))) await loadEpisode(true);
    else renderEpisodeDetail();
  } catch (err) { failed("episodes", err); }
}

function scoreText(e) {
  if (e.anomaly_score === null || e.anomaly_score === undefined) return "—";
  return e.anomaly_score.toFixed(3) + (e.threshold === null || e.threshold === undefined ? "" : " / " + e.threshold.toFixed(3));
}

// --- episode detail (its facts, its events paged, the frames stored for the model) ----------

/** "12/7/2026, 16:12:01 (3 min ago)": local time with how long ago (or how soon). */
function fmtWhen(iso) {
  if (!iso) return "—";
  const d = parseIso(iso);
  if (isNaN(d)) return "—";
  const seconds = (Date.now() - d.getTime()) / 1000;
  const rel = seconds >= -1 ? fmtAgo(seconds) : t("in", { when: fmtDuration(-seconds) });
  return el("time", { datetime: d.toISOString(), title: d.toISOString() }, fmtTime(d.toISOString()) + " (" + rel + ")");
}

/** "2 min 5 s", "1 h 3 min", "2 d 4 h". */
function fmtDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t("seconds", { n: s });
  if (s < 3600) return t("minutes", { n: Math.floor(s / 60) }) + (s % 60 ? " " + t("seconds", { n: s % 60 }) : "");
  if (s < 86400) return t("hours", { n: Math.floor(s / 3600) }) + (s % 3600 >= 60 ? " " + t("minutes", { n: Math.floor((s % 3600) / 60) }) : "");
  return t("days", { n: Math.floor(s / 86400) }) + (s % 86400 >= 3600 ? " " + t("hours", { n: Math.floor((s % 86400) / 3600) }) : "");
}

function openEpisode(id) {
  state.episode = { id, data: null, events: [], next: null, rendered: "" };
  $("episode-error").textContent = "";
  for (const tr of $("episodes").querySelectorAll("tr.episode-row")) tr.classList.toggle("current", tr.dataset.id === id);
  renderEpisodeDetail();
  $("episode-detail").scrollIntoView({ block: "nearest" });
  return loadEpisode(false);
}

function closeEpisode() {
  state.episode = null;
  $("episode-detail").hidden = true;
  for (const tr of $("episodes").querySelectorAll("tr.episode-row.current")) tr.classList.remove("current");
}

/** The episode with its newest events; `keep` reloads as many events as are shown (so the
    pages loaded with "More" stay, up to the API's 500). */
async function loadEpisode(keep) {
  const ep = state.episode;
  if (!ep) return;
  try {
    const limit = keep ? Math.min(500, Math.max(EP_EVENTS, ep.events.length)) : EP_EVENTS;
    const detail = await api("episodes/" + encodeURIComponent(ep.id) + "?events_limit=" + limit);
    if (state.episode !== ep) return; // another episode was opened meanwhile
    ep.data = detail;
    if (!keep || ep.events.length <= 500) {
      ep.events = detail.events || [];
      ep.next = detail.events_next_cursor || null;
    }
    $("episode-error").textContent = "";
    renderEpisodeDetail();
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    if (state.episode === ep) $("episode-error").textContent = t("loadFailed") + ": " + err.message;
  }
}

async function moreEpisodeEvents() {
  const ep = state.episode;
  if (!ep || !ep.next) return;
  $("episode-more").disabled = true;
  try {
    const page = await api("events?episode_id=" + encodeURIComponent(ep.id) + "&limit=" + EP_EVENTS + "&cursor=" + encodeURIComponent(ep.next));
    if (state.episode !== ep) return;
    const seen = new Set(ep.events.map((e) => e.id));
    ep.events = ep.events.concat(page.items.filter((e) => !seen.has(e.id)));
    ep.next = page.next_cursor || null;
    renderEpisodeDetail();
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    $("episode-error").textContent = t("loadFailed") + ": " + err.message;
  } finally {
    $("episode-more").disabled = false;
  }
}

function fact(key, value) {
  return [el("dt", {}, t(key)), el("dd", { "data-fact": key }, value === null || value === undefined || value === "" ? "—" : value)];
}

function renderEpisodeDetail() {
  const ep = state.episode;
  const box = $("episode-detail");
  if (!ep) { box.hidden = true; return; }
  box.hidden = false;
  box.dataset.id = ep.id;
  const e = ep.data;
  // Unchanged: leave the DOM alone (the refresh must not replace what is being read or clicked).
  const signature = JSON.stringify([state.lang, state.role, e, ep.events.length, ep.next]);
  if (signature === ep.rendered) return;
  ep.rendered = signature;
  $("episode-title").replaceChildren(t("episodeDetail") + " ", e ? el("strong", { class: "source-id" }, e.source_id) : "", " ",
    el("span", { class: "uuid muted", title: ep.id }, ep.id.slice(0, 8) + "…"));
  if (!e) {
    $("episode-facts").replaceChildren(el("p", { class: "muted" }, "…"));
    $("episode-events").replaceChildren();
    $("episode-more").hidden = true;
    return;
  }
  box.dataset.status = e.status;
  const end = e.ended_at ? parseIso(e.ended_at) : new Date();
  const duration = fmtDuration((end.getTime() - parseIso(e.started_at).getTime()) / 1000) + (e.ended_at ? "" : " (" + t("stillOpen") + ")");
  const labels = (state.labels && state.labels.labels) || [];
  const normal = (state.labels && state.labels.normal) || new Set();
  $("episode-facts").replaceChildren(...[
    fact("source", el("strong", { class: "source-id" }, e.source_id)),
    fact("status", pill(e.status, statusKind(e.status))),
    fact("started", fmtWhen(e.started_at)),
    fact("ended", e.ended_at ? fmtWhen(e.ended_at) : t("stillOpen")),
    fact("duration", duration),
    fact("closeReason", e.close_reason ? (I18N.en["cr_" + e.close_reason] ? t("cr_" + e.close_reason) : e.close_reason) : null),
    fact("decision", e.decision ? pill(e.decision, statusKind(e.decision)) : null),
    fact("score", scoreText(e)),
    fact("label", e.top_label ? labelName(e.top_label) : null),
    fact("events", String(e.event_count)),
    fact("probsCount", String(e.probs_count)),
    fact("frames", e.sequence_length === null || e.sequence_length === undefined ? null : String(e.sequence_length)),
    fact("modelVersion", e.model_version),
    fact("alert", e.alert_status ? statusPill(e.alert_status) : null),
    fact("feedback", feedbackCell(e, labels, normal)),
  ].flat());
  const rows = ep.events.map((v) => [
    el("time", { datetime: v.timestamp, title: v.timestamp }, fmtTime(v.timestamp)),
    el("span", { class: "ev-type" }, v.event_type),
    v.probs ? topProb(v.probs) : "—",
    v.sequence_length === null || v.sequence_length === undefined ? "—" : String(v.sequence_length),
    el("span", { class: "uuid", title: v.id }, v.id.slice(0, 8) + "…"),
  ]);
  $("episode-events").replaceChildren(rows.length ? table(["time", "type", "topClass", "frames", "id"], rows)
    : el("p", { class: "empty" }, t("noEvents")));
  const trs = $("episode-events").querySelectorAll("tbody tr");
  ep.events.forEach((v, n) => { trs[n].classList.add("episode-event"); trs[n].dataset.id = v.id; trs[n].dataset.type = v.event_type; });
  $("episode-more").hidden = !ep.next;
}

function wireEpisodes() {
  $("episode-close").addEventListener("click", closeEpisode);
  $("episode-more").addEventListener("click", moreEpisodeEvents);
}

const OUTCOME_KIND = { false_alarm: "bad", miss: "bad", confirmed: "ok", undecided: "warn" };

/** The operator's label and what it says of the verdict; for operators and admins one button
    per label of the active model (the current one pressed), a click saves it. */
function feedbackCell(e, labels, normal) {
  const fb = e.feedback || null;
  const parts = [];
  const buttons = canLabel() ? labels.map((label) => {
    const button = el("button", {
      type: "button", class: "fb-label " + (normal.has(label) ? "fb-normal" : "fb-abnormal"),
      "data-label": label, "aria-pressed": String(!!fb && fb.label === label), title: t("labelAs", { label: labelName(label) }),
    }, labelName(label));
    button.addEventListener("click", () => sendFeedback(e.id, label, buttons));
    return button;
  }) : [];
  if (buttons.length) parts.push(el("div", { class: "fb-buttons", role: "group", "aria-label": t("feedback") }, buttons));
  // Viewers (and a label the active model no longer has) see the label itself.
  if (fb && (!buttons.length || !labels.includes(fb.label))) {
    parts.push(el("span", { class: "pill fb-current", "data-label": fb.label }, labelName(fb.label)));
  }
  if (fb && e.feedback_outcome) {
    parts.push(el("span", { class: "pill fb-outcome " + (OUTCOME_KIND[e.feedback_outcome] || ""), "data-outcome": e.feedback_outcome },
      t("outcome_" + e.feedback_outcome)));
  }
  if (!parts.length) return "—";
  const node = el("div", { class: "fb" }, parts);
  if (fb && fb.by) node.title = t("feedbackBy", { by: fb.by, at: fmtTime(fb.at) });
  return node;
}

async function sendFeedback(episodeId, label, buttons) {
  $("episodes-error").textContent = "";
  for (const b of buttons) b.disabled = true;
  try {
    await postJson("episodes/" + encodeURIComponent(episodeId) + "/feedback", { label });
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    $("episodes-error").textContent = err.message;
    for (const b of buttons) b.disabled = false;
    return;
  }
  await loadEpisodes();
}

// --- stored error texts (alerts' and deliveries' last_error) in the page's language ----------

/** The providers' and parts' names as Sentinel writes them in an error ("Slack webhook timed out"). */
const WHAT_KEYS = {
  webhook: "what_webhook", "Slack webhook": "what_slack", "SMTP server": "what_smtp", "Kakao memo send": "what_memo",
  "Kakao token refresh": "what_refresh", "Kakao token info": "what_tokenInfo", "Kakao user info": "what_userInfo",
};
/** The channels as their "… is not configured" messages name them. */
const CHANNEL_KEYS = { "the webhook": "ch_webhook", Slack: "ch_slack", "e-mail": "ch_email", Kakao: "ch_kakao" };
const CHANNEL_PREFIX = /^(?:kakao|slack|webhook|email): /;

function whatName(what) {
  return WHAT_KEYS[what] ? t(WHAT_KEYS[what]) : what;
}

/** "set A, B and C (and D with E for automatic refresh)": the settings to set, translated. */
function settingsHint(rest) {
  const m = /^set ([A-Z0-9_, ]+?(?: (?:and|or) [A-Z0-9_]+)?)(?: \(and ([A-Z0-9_]+) with ([A-Z0-9_]+)(?: for automatic refresh)?\))?$/.exec(rest);
  if (!m) return rest;
  const names = state.lang === "ko" ? m[1].replace(/ (?:and|or) /g, ", ") : m[1];
  return t("err_set", { names }) + (m[2] ? " " + t("err_kakaoRefresh", { refresh: m[2], key: m[3] }) : "");
}

/** Each fixed phrase Sentinel stores as a last error (app/services/alerts.py, the notifiers, the
    Kakao client) and its catalogue entry; ids and times stay in the text (humanised later). */
const ERROR_TEXTS = [
  [/^acknowledged$/, () => t("err_acknowledged")],
  [/^acknowledged at (\S+)$/, (m) => t("err_acknowledgedAt", { at: m[1] })],
  [/^gave up after (\d+) attempts: ([\s\S]*)$/, (m) => t("err_gaveUp", { n: m[1], rest: translateError(m[2]) })],
  [/^ALERT_CHANNELS is empty: alerts are recorded only, nothing is sent; set ALERT_CHANNELS \(([^)]*)\)/,
    (m) => t("err_recordOnly", { channels: m[1] })],
  [/^no route sends (\w+) alerts from this source to an enabled channel/, (m) => t("err_noRoute", { kind: kindName(m[1]) })],
  [/^silenced by (\S+) until (\S+)$/, (m) => t("err_silencedUntil", { id: m[1], until: m[2] })],
  [/^silenced by (\S+) while schedule ([\s\S]+) runs$/, (m) => t("err_silencedSchedule", { id: m[1], schedule: m[2] })],
  [/^inhibited: ([\s\S]+) offline since (\S+) \(outage alert (\S+)\)$/,
    (m) => t("err_inhibited", { source: m[1], since: m[2], id: m[3] })],
  [/^flapping since (\S+): quiet until stable for FLAP_WINDOW_SECS=(\d+)$/, (m) => t("err_flapping", { since: m[1], n: m[2] })],
  [/^joined incident (\S+) \(opened (\S+)\)$/, (m) => t("err_joined", { id: m[1], at: m[2] })],
  [/^cooldown: alert (\S+) for this source at (\S+)$/, (m) => t("err_cooldown", { id: m[1], at: m[2] })],
  [/^budget: (\d+) alerts from this source in the last hour reached ALERT_MAX_PER_SOURCE_PER_HOUR=(\d+)$/,
    (m) => t("err_budgetSource", { count: m[1], cap: m[2] })],
  [/^budget: (\d+) alerts in the last hour reached ALERT_MAX_PER_HOUR=(\d+)$/, (m) => t("err_budgetAll", { count: m[1], cap: m[2] })],
  [/^internal error: (\w+)$/, (m) => t("err_internal", { name: m[1] })],
  [/^(\w+) is in ALERT_CHANNELS but not configured: ([\s\S]*)$/,
    (m) => t("err_channelUnconfigured", { channel: m[1], rest: settingsHint(m[2]) })],
  [/^no channel in ALERT_CHANNELS \(([^)]*)\) is configured: alerts would go nowhere$/, (m) => t("err_noneConfigured", { names: m[1] })],
  [/^(\w+) failed its last (\d+) deliveries: ([\s\S]*)$/,
    (m) => t("err_failingStreak", { channel: m[1], n: m[2], rest: translateError(m[3]) })],
  [/^Kakao access token expired and no refresh is possible/, () => t("err_kakaoExpired")],
  [/^(the webhook|[\w-]+) is not configured(?:: ([\s\S]*))?$/, (m) => {
    const channel = CHANNEL_KEYS[m[1]] ? t(CHANNEL_KEYS[m[1]]) : m[1];
    return t("err_notConfigured", { channel, rest: m[2] ? settingsHint(m[2]) : "" }).replace(/:\s*$/, "");
  }],
  [/^SMTP login refused \((\d+)\)$/, (m) => t("err_smtpLogin", { code: m[1] })],
  [/^SMTP server refused the recipients \(([\d, ]+)\)$/, (m) => t("err_smtpRecipients", { codes: m[1] })],
  [/^(Kakao [\w ]+?) failed: HTTP (\d+), ([\s\S]*)$/, (m) => t("err_failedHttp", { what: whatName(m[1]), code: m[2], rest: m[3] })],
  [/^([\w -]+?) returned an unexpected body: ([\s\S]*)$/, (m) => t("err_unexpectedBody", { what: whatName(m[1]), body: m[2] })],
  [/^([\w -]+?) answered (HTTP \d+|\d+)(?:: ([\s\S]*))?$/,
    (m) => t(m[3] ? "err_answeredBody" : "err_answered", { what: whatName(m[1]), code: m[2], body: m[3] || "" })],
  [/^([\w -]+?) timed out$/, (m) => t("err_timedOut", { what: whatName(m[1]) })],
  [/^([\w -]+?) unreachable: (\w+)$/, (m) => t("err_unreachable", { what: whatName(m[1]), name: m[2] })],
];

/** A stored last error in the page's language: the fixed phrases translated, per channel when
    several failed ("kakao: …; slack: …"); a text the console does not know stays as it is. */
function translateError(text) {
  if (text === null || text === undefined || text === "") return "";
  const s = String(text);
  if (CHANNEL_PREFIX.test(s)) {
    return s.split(/; (?=(?:kakao|slack|webhook|email): )/).map((part) => {
      const cut = part.indexOf(": ");
      return part.slice(0, cut + 2) + translateError(part.slice(cut + 2));
    }).join("; ");
  }
  for (const [pattern, render] of ERROR_TEXTS) {
    const m = pattern.exec(s);
    if (m) return render(m);
  }
  return s;
}

// A UUID, or an ISO 8601 time as Python writes it (stored in UTC).
const ID_OR_TIME = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)/gi;

/** Parse Python's isoformat (microseconds, maybe no zone: UTC) as a Date. */
function parseIso(iso) {
  let s = String(iso).replace(/(\.\d{3})\d+/, "$1");
  if (!/(Z|[+-]\d\d:?\d\d)$/i.test(s)) s += "Z";
  return new Date(s);
}

/** Text with its UUIDs shortened (the whole id in the title) and its UTC times in local time. */
function humanised(text) {
  const parts = [];
  let at = 0;
  for (const m of String(text).matchAll(ID_OR_TIME)) {
    if (m.index > at) parts.push(text.slice(at, m.index));
    if (m[1]) parts.push(el("span", { class: "uuid", title: m[1] }, m[1].slice(0, 8) + "…"));
    else {
      const d = parseIso(m[2]);
      parts.push(isNaN(d) ? m[2] : el("time", { datetime: d.toISOString(), title: m[2] }, fmtTime(d.toISOString())));
    }
    at = m.index + m[0].length;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts;
}

/** A last error for a table cell: translated and humanised; the stored text in the title. */
function errorNode(text, extraClass) {
  return el("span", { class: "err-text" + (extraClass ? " " + extraClass : ""), title: String(text) }, humanised(translateError(text)));
}

// --- incidents (the alerts tab: list, details, acknowledge, silence the source) -------------

const INC_PAGE = 50;
const SILENCE_HOURS = [1, 4, 24];

/** Operators and admins acknowledge incidents (development mode too). */
function canAck() {
  return canLabel();
}

/** Creating a silence is an administrator's action in the API (POST /silences). */
function canSilence() {
  // Operators may silence one-off for up to 24 hours (the API refuses more).
  return canLabel();
}

/** An alert's or delivery's status in the page's language (`partial` has its own entry). */
function statusName(status) {
  return I18N.en["st_" + status] ? t("st_" + status) : t(status);
}

function statusPill(status) {
  return el("span", { class: "pill " + (status === "partial" ? "warn" : statusKind(status)) }, statusName(status));
}

function kindName(kind) {
  return I18N.en["kind_" + kind] ? t("kind_" + kind) : String(kind);
}

/** `notify`, `update:2`, `resolve`, `escalation`, `escalation:3` in the page's language. */
function stageName(stage) {
  const m = /^([a-z]+)(?::(\d+))?$/.exec(String(stage));
  if (!m || !I18N.en["stage_" + m[1]]) return String(stage);
  return t("stage_" + m[1], { n: m[2] || "1" });
}

/** fnmatch's `*` and `?` (and `[...]` left literal enough): does a silence pattern cover a source? */
function globMatches(pattern, value) {
  const p = String(pattern);
  let re = "^";
  for (let n = 0; n < p.length; n++) {
    const c = p[n];
    const close = c === "[" ? p.indexOf("]", n + 2) : -1;
    if (c === "*") re += "[\\s\\S]*";
    else if (c === "?") re += "[\\s\\S]";
    else if (close > 0) { // a class: [abc], [!abc], [*]
      let body = p.slice(n + 1, close);
      const negate = body.startsWith("!");
      if (negate) body = body.slice(1);
      re += "[" + (negate ? "^" : "") + body.replace(/[\\\]^]/g, "\\$&") + "]";
      n = close;
    } else re += c.replace(/[.+^${}()|[\]\\*?]/g, "\\$&");
  }
  try { return new RegExp(re + "$").test(value); } catch (e) { return false; }
}

/** A source id as a glob that matches only itself (fnmatch: `[*]` is a literal star). */
function literalGlob(source) {
  return String(source).replace(/[[*?]/g, (c) => "[" + c + "]");
}

function ackedText(i) {
  if (!i.acked_at) return null;
  const via = i.acked_via ? (I18N.en["via_" + i.acked_via] ? t("via_" + i.acked_via) : i.acked_via) : "—";
  const by = i.acked_by ? shortWho(i.acked_by) : "—";
  return i.acked_channel ? t("ackedByChannel", { by, via, channel: i.acked_channel }) : t("ackedBy", { by, via });
}

/** The alerts component of /health as a banner when it is not healthy (with its reason). */
async function loadAlertsHealth() {
  const banner = $("alerts-health");
  try {
    const report = await api("/health");
    const alerts = ((report && (report.services || report.components)) || {}).alerts;
    const status = alerts && alerts.status;
    // "disabled" with a reason is record-only (ALERT_CHANNELS empty): say so too.
    if (!status || ["healthy", "ok"].includes(status) || (status === "disabled" && !alerts.reason)) {
      banner.hidden = true;
      return;
    }
    banner.hidden = false;
    banner.dataset.status = status;
    const reason = alerts.reason || alerts.error || "";
    const title = { degraded: "alertsDegraded", disabled: "alertsRecordOnly" }[status] || "alertsDown";
    // Each reason translated on its own (`reason` joins them with "; "); the stored text in the title.
    const reasons = (alerts.reasons && alerts.reasons.length ? alerts.reasons : [reason]).filter(Boolean);
    const said = reasons.flatMap((r, n) => [n ? "; " : " ", ...humanised(translateError(r))]);
    banner.replaceChildren(el("strong", {}, t(title)),
      " ", pill(status, statusKind(status)), reason ? el("span", { class: "reason", title: reason }, said) : null);
  } catch (err) {
    if (err instanceof AuthError) throw err;
    banner.hidden = true;
  }
}

/** Incidents newest first; a refresh reloads as many as are shown (so "More" pages stay). */
async function loadIncidents(more) {
  const inc = state.incidents;
  try {
    const health = loadAlertsHealth();
    let items;
    let next;
    if (more && inc.next) {
      const page = await api("incidents?limit=" + INC_PAGE + "&cursor=" + encodeURIComponent(inc.next));
      items = inc.items.concat(page.items);
      next = page.next_cursor;
    } else {
      const limit = Math.min(500, Math.max(INC_PAGE, inc.items.length));
      const page = await api("incidents?limit=" + limit);
      items = page.items;
      next = page.next_cursor;
    }
    const [silences] = await Promise.all([
      api("silences").then((d) => d.items || []).catch((err) => { if (err instanceof AuthError) throw err; return []; }),
      Promise.all([...inc.expanded].filter((id) => items.some((i) => i.id === id)).map((id) =>
        api("incidents/" + encodeURIComponent(id)).then((d) => { inc.details[id] = d; })
          .catch((err) => { if (err instanceof AuthError) throw err; }))),
      health,
    ]);
    inc.items = items;
    inc.next = next;
    inc.silences = silences;
    renderIncidents();
  } catch (err) { failed("incidents", err); }
}

/** The newest alerts, one row each: kind, source, status and the last error (translated, ids
    shortened, times local); redrawn only when they change. */
async function loadAlerts() {
  try {
    const page = await api("alerts?limit=" + INC_PAGE);
    const signature = JSON.stringify([state.lang, page.items]);
    if (signature === state.alertsRendered && $("alerts").querySelector("table, .empty")) return;
    state.alertsRendered = signature;
    const rows = page.items.map((a) => [
      el("span", { class: "alert-kind", "data-kind": a.kind }, kindName(a.kind)),
      el("strong", { class: "source-id" }, a.source_id),
      el("span", { class: "alert-status", "data-status": a.status }, statusPill(a.status)),
      a.score === null || a.score === undefined ? "—" : Number(a.score).toFixed(3),
      String(a.attempts),
      a.last_error ? errorNode(a.last_error, "alert-error") : "—",
      el("time", { datetime: a.created_at, title: a.created_at }, fmtTime(a.created_at)),
      a.sent_at ? el("time", { datetime: a.sent_at, title: a.sent_at }, fmtTime(a.sent_at)) : "—",
    ]);
    fill("alerts", table(["kind", "source", "status", "score", "attempts", "lastError", "created", "sent"], rows));
    const trs = $("alerts").querySelectorAll("tbody tr");
    page.items.forEach((a, n) => { trs[n].classList.add("alert-row"); trs[n].dataset.id = a.id; trs[n].dataset.kind = a.kind; });
  } catch (err) { failed("alerts", err); }
}

function renderIncidents(force) {
  const inc = state.incidents;
  // Unchanged data: leave the DOM alone (the 5-second refresh must not replace what is clicked).
  const signature = JSON.stringify([state.lang, state.role, inc.items, [...inc.expanded], inc.details, inc.silences, inc.picking]);
  if (!force && signature === inc.rendered && $("incidents").querySelector("table, .empty")) return;
  inc.rendered = signature;
  $("incidents-more").hidden = !inc.next;
  if (!inc.items.length) { fill("incidents", el("p", { class: "empty" }, t("empty"))); return; }
  const columns = ["kind", "source", "status", "alertCount", "maxScore", "opened", "lastAlert", "acknowledged", ""];
  const head = el("tr", {}, columns.map((c) => el("th", {}, c ? t(c) : "")));
  const body = el("tbody", {});
  for (const i of inc.items) {
    const open = inc.expanded.has(i.id);
    const silence = inc.silences.find((s) => s.active !== false && globMatches(s.source_id, i.source_id));
    const acked = ackedText(i);
    const actions = el("div", { class: "inc-actions" });
    const toggle = el("button", { type: "button", class: "secondary inc-toggle", "aria-expanded": String(open) }, t(open ? "hideDetails" : "details"));
    toggle.addEventListener("click", () => toggleIncident(i.id));
    actions.append(toggle);
    if (canAck() && !i.acked_at) {
      const ack = el("button", { type: "button", class: "inc-ack" }, t("ackAction"));
      ack.addEventListener("click", () => ackIncident(i.id, ack));
      actions.append(ack);
    }
    if (canSilence()) {
      const sil = el("button", { type: "button", class: "secondary inc-silence", "aria-expanded": String(inc.picking === i.id) }, t("silenceAction"));
      sil.addEventListener("click", () => { inc.picking = inc.picking === i.id ? null : i.id; renderIncidents(); });
      actions.append(sil);
      if (inc.picking === i.id) {
        const pick = el("div", { class: "silence-pick", role: "group", "aria-label": t("silenceFor", { source: i.source_id }) },
          el("span", { class: "muted" }, t("silenceFor", { source: i.source_id })));
        for (const h of SILENCE_HOURS) {
          const b = el("button", { type: "button", class: "silence-hours", "data-hours": h }, t("hours" + h));
          b.addEventListener("click", () => silenceSource(i, h, pick));
          pick.append(b);
        }
        const cancel = el("button", { type: "button", class: "link silence-cancel" }, t("cancel"));
        cancel.addEventListener("click", () => { inc.picking = null; renderIncidents(); });
        pick.append(cancel);
        actions.append(pick);
      }
    }
    const cells = [
      el("span", { class: "inc-kind", "data-kind": i.kind }, kindName(i.kind)),
      el("strong", { class: "source-id" }, i.source_id),
      el("span", {}, pill(i.status === "open" ? "open" : "resolved", i.status === "open" ? "warn" : "ok"),
        silence ? el("span", { class: "pill inc-silenced", title: silence.source_id }, t("silencedUntil", { until: silence.until ? fmtTime(silence.until) : (silence.schedule || "—") })) : null),
      el("span", { class: "num inc-count" }, String(i.alert_count)),
      i.max_score === null || i.max_score === undefined ? "—" : Number(i.max_score).toFixed(3),
      fmtTime(i.opened_at),
      fmtTime(i.last_alert_at),
      acked ? el("span", { class: "inc-acked", "data-via": i.acked_via || "", title: fmtTime(i.acked_at) }, pill("acknowledged", "ok"), " ", acked) : "—",
      actions,
    ];
    const row = el("tr", { class: "incident-row", "data-id": i.id, "data-status": i.status, "data-acked": i.acked_at ? "true" : "false" },
      cells.map((cell, n) => el("td", { "data-label": columns[n] ? t(columns[n]) : "" }, cell)));
    body.append(row);
    if (open) {
      body.append(el("tr", { class: "incident-detail", "data-id": i.id },
        el("td", { colspan: columns.length }, incidentDetail(inc.details[i.id]))));
    }
  }
  fill("incidents", el("table", { class: "incidents" }, el("thead", {}, head), body));
}

/** The incident's message (its first alert's text) and that alert's deliveries per channel. */
function incidentDetail(detail) {
  if (!detail) return el("p", { class: "muted" }, "…");
  const alerts = detail.alerts || [];
  const first = alerts.find((a) => a.id === detail.first_alert_id) || alerts[0];
  if (!first) return el("p", { class: "empty" }, t("empty"));
  const deliveries = first.deliveries || [];
  const rows = deliveries.map((d) => [
    el("span", { class: "dl-channel" }, d.channel),
    el("span", { class: "dl-stage", "data-stage": d.stage }, stageName(d.stage)),
    el("span", { class: "dl-status", "data-status": d.status }, pill(d.status, statusKind(d.status))),
    String(d.attempts),
    d.last_error ? errorNode(d.last_error, "dl-error") : "—",
    fmtTime(d.sent_at),
  ]);
  return el("div", { class: "inc-detail" },
    el("h3", {}, t("message")),
    el("pre", { class: "inc-text" }, first.text || ""),
    el("h3", {}, t("deliveries")),
    rows.length ? table(["channel", "stage", "status", "attempts", "lastError", "sent"], rows)
      : el("p", { class: "empty" }, first.last_error ? errorNode(first.last_error) : t("noDeliveries")));
}

async function toggleIncident(id) {
  const inc = state.incidents;
  if (inc.expanded.has(id)) { inc.expanded.delete(id); renderIncidents(); return; }
  inc.expanded.add(id);
  renderIncidents();
  try {
    inc.details[id] = await api("incidents/" + encodeURIComponent(id));
    renderIncidents();
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    incidentsMessage(err.message, true);
  }
}

function incidentsMessage(text, error) {
  $("incidents-error").textContent = error ? text : "";
  $("incidents-notice").textContent = error ? "" : text;
}

async function ackIncident(id, button) {
  incidentsMessage("", false);
  button.disabled = true;
  try {
    const result = await postJson("incidents/" + encodeURIComponent(id) + "/ack", { via: "console" });
    const inc = state.incidents;
    const detail = result.incident;
    inc.details[id] = detail;
    inc.items = inc.items.map((i) => (i.id === id ? Object.assign({}, i, detail, { alerts: undefined }) : i));
    incidentsMessage(t("ackDone"), false);
    renderIncidents(true);
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    incidentsMessage(err.message, true);
    button.disabled = false;
  }
}

async function silenceSource(incident, hours, pick) {
  incidentsMessage("", false);
  for (const b of pick.querySelectorAll("button")) b.disabled = true;
  const until = new Date(Date.now() + hours * 3600 * 1000).toISOString();
  try {
    const silence = await postJson("silences", {
      source_id: literalGlob(incident.source_id), until,
      reason: "console: incident " + incident.id,
    });
    const inc = state.incidents;
    inc.silences = [silence].concat(inc.silences.filter((s) => s.id !== silence.id));
    inc.picking = null;
    incidentsMessage(t("silenceDone", { source: incident.source_id, until: fmtTime(silence.until || until) }), false);
    renderIncidents(true);
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    incidentsMessage(err.message, true);
    for (const b of pick.querySelectorAll("button")) b.disabled = false;
  }
}

// --- schedules & silences (administrators) --------------------------------------------------

async function loadSchedules() {
  const [schedules, silences] = await Promise.all([
    api("alerts/schedules").catch((err) => err),
    api("silences?include_expired=true").catch((err) => err),
  ]);
  if (schedules instanceof AuthError || silences instanceof AuthError) return signOut(t("sessionEnded"));
  if (schedules instanceof Error) failed("schedules", schedules);
  else renderSchedules(schedules);
  if (silences instanceof Error) failed("silences", silences);
  else renderSilences(silences.items || []);
}

function renderSchedules(data) {
  // {"timezone", "schedules": [...]}; an older shape ({"items"} or a bare list) reads too.
  const list = Array.isArray(data) ? data : (data && (data.schedules || data.items));
  const items = Array.isArray(list) ? list : [];
  const zone = data && typeof data.timezone === "string" ? el("p", { class: "muted schedule-zone" }, t("timezone") + ": " + data.timezone) : null;
  if (!items.length) { $("schedules").replaceChildren(...[zone, el("p", { class: "empty" }, t("noSchedules"))].filter(Boolean)); return; }
  const times = (s) => (Array.isArray(s.times) ? s.times : []).map((r) => (r && typeof r === "object" ? (r.start || "?") + "–" + (r.end || "?") : String(r))).join(", ") || "—";
  const exceptions = (s) => (Array.isArray(s.exceptions) ? s.exceptions : []).map((x) => {
    if (!x || typeof x !== "object") return String(x);
    return String(x.date || "?") + (x.active === undefined ? "" : " (" + t(x.active ? "runs" : "skipped") + ")");
  }).join(", ") || "—";
  const rows = items.map((s) => [
    el("strong", { class: "schedule-name" }, String(s.name || "—")),
    (Array.isArray(s.weekdays) ? s.weekdays.map((d) => (I18N.en["wd_" + d] ? t("wd_" + d) : String(d))).join(", ") : "") || "—",
    times(s),
    exceptions(s),
    s.active === undefined ? "—" : pill(s.active ? "runs" : "idle", s.active ? "warn" : ""),
  ]);
  $("schedules").replaceChildren(...[zone, table(["name", "weekdays", "times", "exceptions", "now"], rows)].filter(Boolean));
  const trs = $("schedules").querySelectorAll("tbody tr");
  items.forEach((s, n) => { trs[n].classList.add("schedule-row"); trs[n].dataset.name = String(s.name || ""); });
}

function renderSilences(items) {
  const rows = items.map((s) => {
    const active = s.active !== false;
    let end = "";
    if (active) {
      end = el("button", { type: "button", class: "danger silence-end", "data-id": s.id }, t("endNow"));
      end.addEventListener("click", () => endSilence(s, end));
    }
    return [
      el("strong", { class: "source-id" }, s.source_id),
      pill(active ? "silenceActive" : "expired", active ? "warn" : ""),
      fmtTime(s.starts_at),
      s.until ? fmtTime(s.until) : (s.schedule ? t("schedule") + ": " + s.schedule : "—"),
      s.reason || "—",
      s.created_by ? el("span", { title: s.created_by }, shortWho(s.created_by)) : "—",
      end,
    ];
  });
  fill("silences", table(["pattern", "status", "from", "endsAt", "reason", "createdBy", ""], rows));
  const trs = $("silences").querySelectorAll("tbody tr");
  items.forEach((s, n) => {
    trs[n].classList.add("silence-row");
    trs[n].dataset.id = s.id;
    trs[n].dataset.active = String(s.active !== false);
  });
}

async function endSilence(silence, button) {
  $("silences-error").textContent = "";
  $("silences-notice").textContent = "";
  button.disabled = true;
  try {
    await api("silences/" + encodeURIComponent(silence.id), { method: "DELETE" });
    $("silences-notice").textContent = t("silenceEnded", { source: silence.source_id });
    await loadSchedules();
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    $("silences-error").textContent = err.message;
    button.disabled = false;
  }
}

// --- model versions (list, retrain with operator feedback, activate / roll back) -------------

const MODEL_KIND = { active: "ok", candidate: "warn", retired: "" };
const TRAIN_POLL_MS = 1000;

async function loadModels() {
  const [models, summary] = await Promise.all([
    api("models").catch((err) => err),
    api("feedback/summary").catch((err) => err),
  ]);
  if (models instanceof AuthError || summary instanceof AuthError) return signOut(t("sessionEnded"));
  $("train-card").hidden = !isAdmin();
  if (models instanceof Error) {
    if (models.status === 403) fill("models", el("p", { class: "muted", "data-i18n": "modelsForbidden" }, t("modelsForbidden")));
    else failed("models", models);
  } else renderModels(models);
  if (summary instanceof Error) failed("feedback-summary", summary);
  else renderFeedbackSummary(summary);
}

function renderModels(data) {
  const admin = isAdmin();
  const columns = ["version", "status", "origin", "created", "baseTest", "holdout", "falseAlarmsMisses", "trainedOn"].concat(admin ? [""] : []);
  const rows = (data.items || []).map((v) => {
    const cells = [
      el("strong", { class: "model-version", title: v.parent_version ? "← " + v.parent_version : null }, v.model_version),
      pill(v.status, MODEL_KIND[v.status] || ""),
      t(v.origin || "—"),
      el("span", {}, fmtTime(v.created_at), v.created_by ? el("div", { class: "muted", title: v.created_by }, shortWho(v.created_by)) : null),
      accuracyCell(v.metrics, "base_test"),
      accuracyCell(v.metrics, "feedback_holdout"),
      errorsCell(v.metrics),
      trainedOnCell(v.trained_on),
    ];
    if (admin) {
      if (v.status === "active") cells.push("");
      else {
        const key = v.status === "retired" ? "rollBack" : "activate";
        const button = el("button", { type: "button", class: "model-activate" + (key === "rollBack" ? " secondary" : ""), "data-version": v.model_version, "data-i18n": key }, t(key));
        button.addEventListener("click", () => activateModel(v.model_version, false, button));
        cells.push(button);
      }
    }
    return cells;
  });
  const parts = [table(columns, rows)];
  if (!admin) parts.unshift(el("p", { class: "muted", "data-i18n": "adminOnlyModels" }, t("adminOnlyModels")));
  $("models").replaceChildren(...parts);
  const trs = $("models").querySelectorAll("tbody tr");
  (data.items || []).forEach((v, i) => { trs[i].classList.add("model-row"); trs[i].dataset.version = v.model_version; trs[i].dataset.status = v.status; });
  const active = $("active-version");
  active.textContent = data.active || "";
  active.hidden = !data.active;
}

/** "user:<uuid>" is long: its first 8 characters (the whole id stays in the title). */
function shortWho(who) {
  const m = /^(user:)([0-9a-f]{8})[0-9a-f-]{28}$/i.exec(who);
  return m ? m[1] + m[2] + "…" : who;
}

function fmtAccuracy(f) {
  if (!f || f.accuracy === null || f.accuracy === undefined || !f.n) return "—";
  const value = f.accuracy > 1 ? f.accuracy : f.accuracy * 100; // a fraction (0–1) or a percentage
  return value.toFixed(1) + "% (n " + f.n + ")";
}

function fmtErrors(f) {
  if (!f || !f.n) return "—";
  return (f.false_alarms ?? "—") + " / " + (f.misses ?? "—");
}

/** The candidate's figure for one evaluation set, with the active model's at training time. */
function accuracyCell(metrics, set) {
  const cand = metrics && metrics.candidate ? metrics.candidate[set] : null;
  const act = metrics && metrics.active ? metrics.active[set] : null;
  if (!cand && !act) return "—";
  return el("div", { class: "figures", "data-set": set }, el("span", { class: "num" }, fmtAccuracy(cand)),
    act ? el("div", { class: "muted" }, t("vsActive", { value: fmtAccuracy(act) })) : null);
}

function errorsCell(metrics) {
  const cand = (metrics && metrics.candidate) || null;
  const act = (metrics && metrics.active) || null;
  if (!cand && !act) return "—";
  const lines = [["base_test", "testShort"], ["feedback_holdout", "feedbackShort"]].map(([set, name]) =>
    el("div", {}, t(name) + " " + fmtErrors(cand && cand[set]),
      act && act[set] ? el("span", { class: "muted" }, " · " + t("vsActive", { value: fmtErrors(act[set]) })) : null));
  return el("div", { class: "figures" }, lines);
}

function trainedOnCell(on) {
  if (!on || on.feedback_episodes === undefined) return "—";
  const counts = Object.entries(on.label_counts || {}).map(([label, n]) => labelName(label) + " " + n).join(", ");
  return el("span", { class: "trained-on", title: counts || null },
    t("trainedOnText", { feedback: on.feedback_episodes || 0, held: on.feedback_held_out || 0, base: on.base_sequences || 0 }));
}

function renderFeedbackSummary(data) {
  const row = (s, name) => [name, String(s.labelled || 0), String(s.false_alarms || 0), String(s.misses || 0),
    String(s.with_sequence || 0),
    typeof s.false_alarm_rate === "number" ? (100 * s.false_alarm_rate).toFixed(1) + "%" : "—"];
  const rows = (data.sources || []).map((s) => row(s, s.source_id));
  if (rows.length > 1 && data.total) rows.push(row(data.total, t("allSources")));
  fill("feedback-summary", table(["source", "labelled", "falseAlarms", "missesCol", "withSequence", "falseAlarmRate"], rows));
}

async function activateModel(version, force, button) {
  $("models-error").textContent = "";
  $("models-notice").textContent = "";
  $("model-gate").hidden = true;
  if (button) button.disabled = true;
  try {
    await postJson("models/" + encodeURIComponent(version) + "/activate", force ? { force: true } : {});
    $("models-notice").textContent = t("activated", { version });
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    if (err.status === 409 && err.code === "model_gate") showGate(version, err);
    else $("models-error").textContent = err.message;
  } finally {
    if (button) button.disabled = false;
  }
  await loadModels();
}

/** A refused activation: the gate's message and figures, and "Activate anyway" (force). */
function showGate(version, err) {
  const body = err.body || {};
  const gate = (body.details && body.details.gate) || {};
  const fmt = (value) => (typeof value === "number" ? fmtAccuracy({ accuracy: value, n: 1 }).replace(/ \(n 1\)$/, "") : "—");
  const rows = [["base_test", "baseTest"], ["feedback_holdout", "holdout"]].filter(([set]) => gate[set]).map(([set, name]) =>
    [t(name) + (gate[set].n !== undefined ? " (n " + gate[set].n + ")" : ""), fmt(gate[set].candidate), fmt(gate[set].active)]);
  const force = el("button", { type: "button", class: "danger model-force", "data-version": version, "data-i18n": "activateAnyway" }, t("activateAnyway"));
  force.addEventListener("click", () => activateModel(version, true, force));
  const box = $("model-gate");
  box.replaceChildren(
    el("h3", { "data-i18n": "gateTitle" }, t("gateTitle") + " (" + version + ")"),
    el("p", { class: "error gate-message" }, err.message),
    rows.length ? table(["gateSet", "gateCandidate", "gateActive"], rows) : "",
    el("div", { class: "row" }, force));
  box.dataset.version = version;
  box.hidden = false;
}

async function trainModel() {
  $("train-error").textContent = "";
  $("train-submit").disabled = true;
  try {
    const started = await postJson("models/train", { include_feedback: true });
    await followTrain(started.job_id || started.id);
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    $("train-error").textContent = err.message;
  } finally {
    $("train-submit").disabled = false;
  }
}

async function followTrain(id) {
  $("train-result").replaceChildren();
  $("train-job-id").textContent = t("trainJob", { id });
  const job = await pollJob($("train-job"), { id, state: "queued", progress: 0 }, TRAIN_POLL_MS);
  if (job.state === "failed") {
    $("train-result").replaceChildren(el("p", { class: "error train-error" }, t("trainFailed") + ": " + (job.error || "")));
  } else {
    const r = job.result || {};
    const seconds = typeof r.train_seconds === "number" ? r.train_seconds.toFixed(1) : "—";
    $("train-result").replaceChildren(el("p", { class: "train-done", "data-version": r.model_version || "" },
      t("trainDone", { version: r.model_version || "?", seconds })));
  }
  await loadModels();
}

function wireModels() {
  $("train-submit").addEventListener("click", trainModel);
}

const LOADERS = {
  overview: loadOverview, sources: loadSources, episodes: loadEpisodes, alerts: () => Promise.all([loadIncidents(false), loadAlerts()]), live: loadBacklog,
  ask: loadHistory, documents: () => loadDocuments(true), models: loadModels, schedules: loadSchedules,
};
// Views the timer refreshes; the Ask, Documents and Models views reload on their own actions (a
// timer would reset the document pages loaded with "More", and the model gate's open question).
const POLLED = new Set(["overview", "sources", "episodes", "alerts"]);

function refresh() {
  return LOADERS[state.view]();
}

function show(view) {
  state.view = view;
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b.dataset.view === view);
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + view;
  refresh();
}

// --- live feed (fetch streaming with the Authorization header) ---------------------------

function setStreamState(key) {
  const node = $("stream-state");
  node.textContent = t(key);
  node.dataset.state = key;
  node.className = "pill " + (key === "connected" ? "ok" : "warn");
}

/** What makes a feed item the same as another: an event or a closed episode by its id; an alert
    by its id and the delivery change it reports (each change is its own line). */
function feedKey(kind, data) {
  if (kind !== "alert") return kind + ":" + (data.id || "");
  return [kind, data.id, data.status, data.channel, data.stage, data.delivery_status, data.attempts].join(":");
}

/** One line of the live feed, newest first. A stream message goes on top; a backlog event (the
    recent events loaded when the view opens) takes its place by time. Nothing is shown twice, so
    a stream that replays or reconnects and a backlog that reloads add no duplicates. */
function addFeedItem(kind, data, backlog) {
  const feed = $("feed");
  const key = feedKey(kind, data);
  if (data.id && [...feed.children].some((li) => li.dataset.key === key)) return;
  const when = data.timestamp || data.received_at || new Date().toISOString();
  let summary = "";
  if (kind === "event") summary = data.event_type + (data.probs ? " " + topProb(data.probs) : "");
  else if (kind === "episode_closed") summary = t(data.decision || "unknown") + (data.anomaly_score != null ? " (" + Number(data.anomaly_score).toFixed(3) + ")" : "");
  else if (kind === "alert") summary = statusName(data.status);
  const at = Date.parse(when) || Date.now();
  const item = el("li", { class: "feed-item" + (backlog ? " backlog" : ""), "data-kind": kind, "data-id": data.id || "", "data-key": key, "data-at": at },
    el("time", {}, fmtTime(when)),
    pill(kind === "event" ? "event" : kind === "alert" ? "alert" : "episode", kind === "alert" ? "bad" : kind === "event" ? "" : "warn"),
    el("strong", {}, data.source_id || ""),
    el("span", {}, summary),
    el("code", {}, data.id || ""));
  if (backlog) feed.insertBefore(item, [...feed.children].find((li) => Number(li.dataset.at) < at) || null);
  else feed.prepend(item);
  while (feed.children.length > FEED_MAX) feed.lastChild.remove();
}

/** The Live view's backlog: the newest events, so the feed is not blank until one arrives. */
async function loadBacklog() {
  try {
    const recent = await api("events/recent?limit=" + BACKLOG);
    for (const e of recent.items) addFeedItem("event", e, true);
    $("feed-error").textContent = "";
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    $("feed-error").textContent = t("loadFailed") + ": " + err.message;
  }
}

function topProb(probs) {
  let best = null;
  for (const [k, v] of Object.entries(probs)) if (best === null || v > best[1]) best = [k, v];
  return best ? best[0] + " " + Number(best[1]).toFixed(2) : "";
}

async function runStream() {
  let delay = 1000;
  while (state.stream) {
    const controller = new AbortController();
    state.stream.controller = controller;
    setStreamState(delay === 1000 ? "connecting" : "reconnecting");
    try {
      const response = await fetch(API + "/events/stream", { headers: headers({ Accept: "text/event-stream" }), signal: controller.signal, cache: "no-store" });
      if (response.status === 401) return signOut(t("sessionEnded"));
      if (!response.ok || !response.body) throw new Error("stream " + response.status);
      await readEvents(response, (kind, data) => { handleEvent(kind, data); delay = 1000; });
    } catch (err) {
      if (!state.stream) return;
    }
    if (!state.stream) return;
    setStreamState("reconnecting");
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

/** Read a Server-Sent Events body; `onEvent(name, data)` per event (data: joined `data:` lines). */
async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = parseBlock(block);
      if (event) onEvent(event.kind, event.data);
    }
  }
}

function parseBlock(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // keep-alive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") kind = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length && kind === "message") return null;
  return { kind, data: data.join("\n") };
}

function handleEvent(kind, data) {
  if (kind === "ready") { setStreamState("connected"); return; }
  if (!data || kind === "message" || kind === "ping") return;
  let payload;
  try { payload = JSON.parse(data); } catch (e) { return; }
  addFeedItem(kind, payload);
  // Sources, episodes and alerts change with events: refresh the visible table soon.
  if (POLLED.has(state.view) && state.view !== "overview") scheduleRefresh();
}

let refreshPending = null;
function scheduleRefresh() {
  if (refreshPending) return;
  refreshPending = setTimeout(() => { refreshPending = null; refresh(); }, 300);
}

function startStream() {
  stopStream();
  state.stream = { controller: null };
  runStream();
}

function stopStream() {
  if (state.stream && state.stream.controller) state.stream.controller.abort();
  state.stream = null;
}

// --- ask (streamed answers, citations, feedback) -------------------------------------------

/** "Title · heading › path · p. 3": where a cited passage sits. */
function placeOf(source) {
  const bits = [];
  if (source.section) bits.push(source.section);
  if (source.page !== null && source.page !== undefined) bits.push(t("pageN", { page: source.page }));
  return bits.join(" · ");
}

function citationList(sources) {
  const list = el("ol", { class: "citations" });
  sources.forEach((source, i) => {
    const place = placeOf(source);
    const button = el("button", { type: "button", class: "cite", "data-n": i + 1 },
      el("span", { class: "cite-n" }, "[" + (i + 1) + "]"), " ",
      el("span", { class: "cite-title" }, source.title || source.doc_id),
      place ? el("span", { class: "cite-place muted" }, place) : null);
    button.addEventListener("click", () => openPassage(source));
    list.append(el("li", {}, button));
  });
  return list;
}

async function openPassage(source) {
  $("passage-title").textContent = source.title || source.doc_id;
  $("passage-meta").textContent = placeOf(source);
  const box = $("passage-text");
  box.replaceChildren();
  $("passage").hidden = false;
  $("passage").scrollIntoView({ block: "nearest" });
  if (source.chunk) { box.textContent = source.chunk; return; }
  // Past answers keep a source's title and heading, not its text: show the document from there.
  try {
    const doc = await api("knowledge/docs/" + encodeURIComponent(source.doc_id));
    box.append(el("p", { class: "muted", "data-i18n": "passageFromDocument" }, t("passageFromDocument")),
      el("div", {}, excerpt(doc.content, source.section)));
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    box.append(el("p", { class: "muted", "data-i18n": "documentGone" }, t("documentGone")));
  }
}

/** About 1,500 characters of `content` from the last heading of `section`, else its start. */
function excerpt(content, section) {
  const heading = (section || "").split("›").pop().trim();
  const at = heading ? Math.max(0, content.indexOf(heading)) : 0;
  const start = at > 0 ? content.lastIndexOf("\n", at) + 1 : 0;
  const text = content.slice(start, start + 1500);
  return start + 1500 < content.length ? text + " …" : text;
}

/** One question and its answer in the thread; returns the pieces the stream fills in. */
function turnView(question) {
  const answer = el("div", { class: "answer" });
  const meta = el("div", { class: "answer-meta" });
  const notice = el("div", {});
  const cites = el("div", {});
  const extra = el("div", {});
  const node = el("article", { class: "turn" }, el("p", { class: "q" }, question), answer, meta, notice, cites, extra);
  $("thread").append(node);
  return { node, answer, meta, notice, cites, extra };
}

function finishTurn(view, done) {
  view.node.dataset.state = "done";
  view.answer.classList.remove("streaming");
  const pills = [];
  if (done.provider === "local") pills.push(el("span", { class: "pill warn", "data-i18n": "localAnswer" }, t("localAnswer")));
  else if (done.cached) pills.push(el("span", { class: "pill", "data-i18n": "cachedAnswer" }, t("cachedAnswer")));
  if (done.provider && done.provider !== "local") pills.push(el("span", { class: "muted" }, done.provider + ":" + done.model));
  view.meta.replaceChildren(...pills);
  // The notice (why no model answered, what to do) sits right under the answer it qualifies.
  if (done.notice) view.notice.replaceChildren(el("p", { class: "notice answer-notice", role: "status" }, done.notice));
  const parts = [];
  if (done.found === false && done.suggestions && done.suggestions.length) {
    parts.push(el("p", { class: "muted" }, el("span", { "data-i18n": "closest" }, t("closest")), ": " + done.suggestions.join(", ")));
  }
  if (done.turn_id && done.conversation_id) parts.push(ratingView(done.conversation_id, done.turn_id, done.feedback || null));
  view.extra.replaceChildren(...parts);
}

function failTurn(view, message, partial) {
  view.node.dataset.state = "error";
  view.answer.classList.remove("streaming");
  if (!partial) view.answer.replaceChildren();
  view.extra.replaceChildren(el("p", { class: "error", role: "alert" }, message),
    partial ? el("p", { class: "muted", "data-i18n": "partial" }, t("partial")) : null);
}

async function ask(question) {
  state.asking = true;
  $("ask-submit").disabled = true;
  $("ask-error").textContent = "";
  const view = turnView(question);
  view.node.dataset.state = "streaming";
  view.answer.classList.add("streaming");
  view.meta.append(el("span", { class: "muted", "data-i18n": "answering" }, t("answering")));
  let finished = false;
  let text = "";
  try {
    const body = { question };
    if (state.conversation) body.conversation_id = state.conversation;
    const response = await fetch(API + "/rag/ask/stream", {
      method: "POST", body: JSON.stringify(body), cache: "no-store",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    });
    if (response.status === 401) return signOut(t("sessionEnded"));
    if (!response.ok || !response.body) throw await errorOf(response);
    await readEvents(response, (kind, data) => {
      let payload;
      try { payload = JSON.parse(data); } catch (e) { return; }
      if (kind === "meta") {
        if (payload.conversation_id) state.conversation = payload.conversation_id;
        if (payload.sources && payload.sources.length) view.cites.replaceChildren(citationList(payload.sources));
      } else if (kind === "token") {
        text += payload.text;
        view.answer.textContent = text;
      } else if (kind === "done") {
        finished = true;
        if (payload.conversation_id) state.conversation = payload.conversation_id;
        finishTurn(view, payload);
      } else if (kind === "error") {
        finished = true;
        failTurn(view, t("askFailed") + ": " + (payload.detail || payload.code), payload.partial || text);
      }
    });
    if (!finished) failTurn(view, t("streamBroke"), text);
    loadHistory();
  } catch (err) {
    // A conversation that is gone (retention, another account): the next question starts anew.
    if (err.code === "conversation_not_found") state.conversation = null;
    failTurn(view, t("askFailed") + ": " + err.message, text);
  } finally {
    state.asking = false;
    $("ask-submit").disabled = false;
  }
}

/** 👍/👎: a click saves the rating at once; the form then adds a comment (and, for 👎, the
    document that should have answered), replacing the rating. */
function ratingView(conversationId, turnId, current) {
  const status = el("span", { class: "rate-status muted", role: "status" });
  const comment = el("textarea", { class: "rate-comment", rows: 2, maxlength: 2000, "data-i18n-placeholder": "commentPlaceholder", placeholder: t("commentPlaceholder") });
  const picker = el("select", { class: "rate-doc" }, el("option", { value: "", "data-i18n": "noDocument" }, t("noDocument")));
  const pickerLabel = el("label", { class: "rate-doc-label" }, el("span", { "data-i18n": "rightDocument" }, t("rightDocument")), picker);
  const form = el("form", { class: "rate-form", hidden: true }, comment, pickerLabel,
    el("div", { class: "row" },
      el("button", { type: "submit", class: "rate-send", "data-i18n": "sendFeedback" }, t("sendFeedback")),
      el("button", { type: "button", class: "link rate-cancel", "data-i18n": "cancel" }, t("cancel"))));
  const thumbs = ["up", "down"].map((rating) => el("button", {
    type: "button", class: "thumb", "data-rating": rating, "aria-pressed": "false",
    "data-i18n-title": rating === "up" ? "helpful" : "notHelpful",
    title: t(rating === "up" ? "helpful" : "notHelpful"), "aria-label": t(rating === "up" ? "helpful" : "notHelpful"),
  }, thumbIcon(rating)));
  const node = el("div", { class: "rate", "data-turn-id": turnId }, el("div", { class: "row" }, thumbs, status), form);
  let rating = null;

  function mark(value) {
    rating = value;
    for (const b of thumbs) b.setAttribute("aria-pressed", String(b.dataset.rating === value));
  }

  async function send(body) {
    status.textContent = "";
    try {
      const saved = await postJson("rag/conversations/" + conversationId + "/turns/" + turnId + "/feedback", body);
      mark(saved.rating);
      status.textContent = t("feedbackSaved");
      status.dataset.saved = saved.rating;
      return true;
    } catch (err) {
      if (err instanceof AuthError) { signOut(t("sessionEnded")); return false; }
      status.textContent = err.message;
      status.className = "rate-status error";
      return false;
    }
  }

  for (const b of thumbs) {
    b.addEventListener("click", async () => {
      if (!(await send({ rating: b.dataset.rating }))) return;
      pickerLabel.hidden = b.dataset.rating !== "down";
      form.hidden = false;
      if (b.dataset.rating === "down") fillPicker(picker);
      comment.focus();
    });
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { rating };
    if (comment.value.trim()) body.comment = comment.value.trim();
    if (rating === "down" && picker.value) body.doc_id = picker.value;
    if (await send(body)) form.hidden = true;
  });
  form.querySelector(".rate-cancel").addEventListener("click", () => { form.hidden = true; });
  if (current) {
    mark(current.rating);
    status.textContent = t(current.rating === "up" ? "ratedUp" : "ratedDown");
  }
  return node;
}

/** A thumb drawn inline (no emoji font needed, nothing fetched): up, or the same turned over. */
function thumbIcon(rating) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z");
  if (rating === "down") path.setAttribute("transform", "rotate(180 12 12)");
  svg.append(path);
  return svg;
}

/** The 👎 document picker: the knowledge base's titles (up to 600, loaded once). */
async function fillPicker(select) {
  if (select.options.length > 1) return;
  try {
    if (!state.pickable) {
      const items = [];
      let cursor = null;
      for (let page = 0; page < 3; page++) {
        const data = await api("knowledge/docs?limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
        items.push(...data.items.map((d) => ({ id: d.id, title: d.title })));
        cursor = data.next_cursor;
        if (!cursor) break;
      }
      state.pickable = items.sort((a, b) => a.title.localeCompare(b.title));
    }
    for (const d of state.pickable) select.append(el("option", { value: d.id }, d.title));
  } catch (err) {
    if (err instanceof AuthError) signOut(t("sessionEnded"));
  }
}

async function loadHistory() {
  try {
    const conversations = await api("rag/conversations?limit=50");
    if (!conversations.length) { fill("history", el("li", { class: "empty", "data-i18n": "turnsNone" }, t("turnsNone"))); return; }
    $("history").replaceChildren(...conversations.map((c) => {
      const button = el("button", { type: "button", class: "history-item" + (c.id === state.conversation ? " current" : ""), "data-id": c.id },
        el("span", { class: "history-title" }, c.title || c.id), el("time", { class: "muted" }, fmtTime(c.created_at)));
      button.addEventListener("click", () => openConversation(c.id));
      return el("li", {}, button);
    }));
  } catch (err) { failed("history", err); }
}

async function openConversation(id) {
  try {
    const conversation = await api("rag/conversations/" + encodeURIComponent(id));
    state.conversation = conversation.id;
    $("thread").replaceChildren();
    $("passage").hidden = true;
    for (const turn of conversation.turns) {
      const view = turnView(turn.question);
      view.answer.textContent = turn.answer;
      if (turn.sources.length) view.cites.replaceChildren(citationList(turn.sources));
      finishTurn(view, { provider: turn.provider, model: turn.model, conversation_id: conversation.id, turn_id: turn.turn_id, feedback: turn.feedback });
    }
    loadHistory();
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    $("ask-error").textContent = t("loadFailed") + ": " + err.message;
  }
}

function newConversation() {
  state.conversation = null;
  $("thread").replaceChildren();
  $("passage").hidden = true;
  $("question").focus();
  loadHistory();
}

function wireAsk() {
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question || state.asking) return;
    $("question").value = "";
    ask(question);
  });
  // Enter sends, Shift+Enter breaks the line (as in chat apps); IME composition is left alone.
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("ask-new").addEventListener("click", newConversation);
  $("passage-close").addEventListener("click", () => { $("passage").hidden = true; });
}

// --- documents (list, upload as an import job, delete) ------------------------------------

async function loadDocuments(reset) {
  try {
    const cursor = reset ? null : state.docs.next;
    const page = await api("knowledge/docs?limit=" + DOC_PAGE + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    state.docs.items = reset ? page.items : state.docs.items.concat(page.items);
    state.docs.next = page.next_cursor;
    state.docs.total = page.total;
    renderDocuments();
  } catch (err) { failed("documents", err); }
}

function renderDocuments() {
  const admin = isAdmin();
  const columns = ["title", "sourceCol", "chunks", "indexed", "updated"].concat(admin ? [""] : []);
  const rows = state.docs.items.map((d) => {
    const cells = [
      el("strong", { class: "doc-title" }, d.title),
      d.source ? el("span", { class: "doc-source" }, d.source) : "—",
      String(d.chunk_count),
      pill(d.indexed ? "yes" : "no", d.indexed ? "ok" : "warn"),
      fmtTime(d.updated_at),
    ];
    if (admin) {
      const button = el("button", { type: "button", class: "danger doc-delete", "data-id": d.id, "data-i18n": "delete" }, t("delete"));
      button.addEventListener("click", () => deleteDocument(d));
      cells.push(button);
    }
    return cells;
  });
  const parts = [table(columns, rows)];
  if (!admin) parts.unshift(el("p", { class: "muted", "data-i18n": "adminOnlyDocs" }, t("adminOnlyDocs")));
  $("documents").replaceChildren(...parts);
  for (const row of $("documents").querySelectorAll("tbody tr")) row.classList.add("doc-row");
  $("doc-total").textContent = String(state.docs.total);
  $("docs-more").hidden = !state.docs.next;
}

async function deleteDocument(doc) {
  if (!window.confirm(t("confirmDelete", { title: doc.title }))) return;
  try {
    await api("knowledge/docs/" + doc.id, { method: "DELETE" });
    state.pickable = null;
    await loadDocuments(true);
  } catch (err) { failed("documents", err); }
}

async function upload(event) {
  event.preventDefault();
  const files = $("upload-files").files;
  $("upload-error").textContent = "";
  if (!files.length) { $("upload-error").textContent = t("chooseFiles"); return; }
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  $("upload-submit").disabled = true;
  try {
    // No Content-Type: the browser writes the multipart boundary itself.
    const job = await api("knowledge/import", { method: "POST", body: form, headers: headers() });
    $("upload-files").value = "";
    await followJob(job);
  } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    $("upload-error").textContent = err.message;
  } finally {
    $("upload-submit").disabled = false;
  }
}

/** A job's state, progress and message in its box (the import's or the retraining's). */
function showJob(box, job) {
  box.hidden = false;
  box.dataset.state = job.state;
  box.dataset.id = job.id;
  box.querySelector(".job-progress").value = job.progress || 0;
  const st = box.querySelector(".job-state");
  st.textContent = t(job.state);
  st.className = "pill job-state " + statusKind(job.state);
  box.querySelector(".job-message").textContent = job.progress_message || "";
}

/** Poll a job until it ends, showing it in `box`; returns the finished job. */
async function pollJob(box, job, everyMs) {
  showJob(box, job);
  while (job.state !== "succeeded" && job.state !== "failed") {
    await new Promise((r) => setTimeout(r, everyMs));
    job = await api("jobs/" + encodeURIComponent(job.id));
    showJob(box, job);
  }
  return job;
}

async function followJob(job) {
  $("job-result").replaceChildren();
  job = await pollJob($("job"), job, JOB_POLL_MS);
  const parts = [];
  if (job.state === "failed") {
    parts.push(el("p", { class: "error" }, t("importFailed") + ": " + (job.error || "")));
  } else {
    const r = job.result || {};
    parts.push(el("p", { class: "job-summary" }, t("importDone", { documents: r.documents || 0, chunks: r.chunks || 0, files: r.files || 0 })));
    const skipped = r.skipped || [];
    if (skipped.length) {
      parts.push(el("h3", { "data-i18n": "skippedFiles" }, t("skippedFiles")),
        table(["file", "reason"], skipped.map((s) => [s.name, s.reason])));
    }
  }
  $("job-result").replaceChildren(...parts);
  state.pickable = null;
  await loadDocuments(true);
}

function wireDocuments() {
  $("upload-form").addEventListener("submit", upload);
  $("docs-more").addEventListener("click", () => loadDocuments(false));
}

// --- sign-in -------------------------------------------------------------------------------

function applyLanguage() {
  document.documentElement.lang = state.lang;
  $("lang").value = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of document.querySelectorAll("[data-i18n-title]")) {
    node.title = t(node.dataset.i18nTitle);
    node.setAttribute("aria-label", node.title);
  }
  if ($("stream-state").dataset.state) setStreamState($("stream-state").dataset.state);
}

function enter(who, role) {
  state.role = role || "";
  $("upload-card").hidden = !isAdmin();
  $("train-card").hidden = !isAdmin();
  $("tab-schedules").hidden = !isAdmin();
  if (state.view === "schedules" && !isAdmin()) state.view = "overview";
  $("login").hidden = true;
  $("app").hidden = false;
  $("devmode").hidden = !state.open;
  $("signout").hidden = state.open && !state.token;
  $("who").textContent = who || "";
  startStream();
  show(state.view);
  clearInterval(state.timer);
  state.timer = setInterval(() => { if (!document.hidden && POLLED.has(state.view)) refresh(); }, REFRESH_MS);
}

function signOut(message) {
  stopStream();
  state.role = "";
  state.conversation = null;
  state.pickable = null;
  $("thread").replaceChildren();
  $("model-gate").hidden = true;
  $("models-notice").textContent = "";
  $("episodes-error").textContent = "";
  closeEpisode();
  $("feed").replaceChildren();
  state.alertsRendered = "";
  $("alerts").replaceChildren();
  state.incidents = { items: [], next: null, expanded: new Set(), details: {}, silences: [], picking: null, rendered: "" };
  $("incidents").replaceChildren();
  $("incidents-error").textContent = "";
  $("incidents-notice").textContent = "";
  clearInterval(state.timer);
  state.token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  $("app").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function signIn(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  const body = new URLSearchParams({ username: $("email").value.trim(), password: $("password").value });
  try {
    const response = await fetch(API + "/auth/login", { method: "POST", body, headers: { "Accept-Language": state.lang } });
    if (!response.ok) {
      let detail = t("badLogin");
      if (response.status !== 401) { try { detail = (await response.json()).detail || detail; } catch (e) { /* keep */ } }
      $("login-error").textContent = typeof detail === "string" ? detail : t("badLogin");
      return;
    }
    const data = await response.json();
    state.token = data.access_token;
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $("password").value = "";
    let role = "";
    try { role = (await api("users/me")).role; } catch (e) { /* a service token has no account */ }
    enter($("email").value.trim(), role);
  } catch (err) {
    $("login-error").textContent = t("loadFailed") + ": " + err.message;
  }
}

async function boot() {
  applyLanguage();
  $("lang").addEventListener("change", (e) => {
    state.lang = e.target.value;
    localStorage.setItem(LANG_KEY, state.lang);
    applyLanguage();
    if (!$("app").hidden) refresh();
  });
  $("login-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => signOut(""));
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => show(b.dataset.view));
  wireAsk();
  wireDocuments();
  wireModels();
  wireEpisodes();
  $("incidents-more").addEventListener("click", () => loadIncidents(true));
  if (state.token) {
    try {
      const me = await api("users/me");
      return enter(me.email, me.role);
    } catch (err) {
      state.token = "";
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  // Without a token: an open API means development mode; otherwise sign in.
  const probe = await fetch(API + "/sources", { headers: headers() }).catch(() => null);
  if (probe && probe.ok) { state.open = true; return enter(""); }
  signOut("");
}

document.addEventListener("DOMContentLoaded", boot);
