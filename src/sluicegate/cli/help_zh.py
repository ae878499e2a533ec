"""Simplified Chinese for every `--help` text of the CLI, keyed by the English text it replaces.

Applied by `cli/lang.localise` when the locale is Chinese; a text missing here stays English (a test
checks that none is missing). Kept apart from the commands so each module's help stays readable.
"""

from __future__ import annotations

HELP_ZH: dict[str, str] = {
    # serve, check-config
    "Run the gateway. 启动网关。": "启动网关。",
    "YAML configuration file.": "YAML 配置文件。",
    "Address to listen on (default 127.0.0.1).": "监听地址（默认 127.0.0.1）。",
    "Port to listen on (default 8080).": "监听端口（默认 8080）。",
    "Worker processes sharing the port.": "共享端口的工作进程数。",
    "Validate a configuration file and print the resolved routes, secrets masked. 校验配置文件。": (
        "校验配置文件，并打印解析后的路由（机密已遮盖）。"
    ),
    "Print the resolved configuration as JSON.": "以 JSON 打印解析后的配置。",
    # plan
    "Plan GPUs and clouds for self-hosting a model: memory fit, speed, cost, export rules.\n\n"
    "Without --gpu it ranks every catalog GPU at its smallest fitting card count (1, 2, 4 or 8);\n"
    "with --gpu (and --count) it evaluates that setup. Subcommands list the catalog.": (
        "为自建部署规划 GPU 与云：显存是否装得下、速度、成本、出口管制。\n\n"
        "不带 --gpu 时，按能装下模型的最少卡数（1、2、4 或 8）对目录中每种 GPU 排名；\n"
        "带 --gpu（及 --count）时评估该配置。子命令列出目录。"
    ),
    "Catalog model name (see `plan models`), HF id, or a config.json path.": (
        "目录中的模型名（见 `plan models`）、HF id，或 config.json 路径。"
    ),
    "Weight precision.": "权重精度。",
    "KV-cache tokens reserved per stream (prompt + output).": "每路流预留的 KV 缓存 token 数（提示 + 输出）。",
    "Prompt length for TTFT [min(1024, context/2)].": "计算首 token 延迟所用的提示长度 [min(1024, context/2)]。",
    "Output tokens per request.": "每个请求的输出 token 数。",
    "Streams decoding at once.": "同时解码的流数。",
    "Evaluate this GPU only (see `plan gpus`).": "只评估这种 GPU（见 `plan gpus`）。",
    "Tensor-parallel card count.": "张量并行的卡数。",
    "Your cloud price rows (YAML/JSON); add or override.": "你自己的云价格条目（YAML/JSON），用于新增或覆盖。",
    "API price per M output tokens (e.g. 0.6, 3CNY) or a name (see `plan apis`).": (
        "API 每百万输出 token 的价格（如 0.6、3CNY）或名称（见 `plan apis`）。"
    ),
    "Output tokens a day to serve (e.g. 50M): sizes replicas and cost per day.": (
        "每天要提供的输出 token 数（如 50M）：据此计算副本数和每日成本。"
    ),
    "Peak over average traffic.": "峰值与平均流量之比。",
    "Slowest acceptable tokens/s per stream when sizing for --tokens-per-day.": (
        "按 --tokens-per-day 规划时，每路流可接受的最低 token/秒。"
    ),
    "KV-cache precision.": "KV 缓存精度。",
    "Exchange rate [catalog's dated rate].": "汇率 [目录中注明日期的汇率]。",
    "Print JSON for scripts.": "打印 JSON，供脚本使用。",
    "List the GPU catalog with specs, prices and export classes.": "列出 GPU 目录：规格、价格和出口管制分类。",
    "Print JSON.": "打印 JSON。",
    "List the catalog's models with parameter counts and KV-cache size.": "列出目录中的模型：参数量和 KV 缓存大小。",
    "List the cloud price rows with their sources and dates.": "列出云价格条目及其来源和日期。",
    "List the API price table used by --api-price NAME.": "列出 --api-price 名称 所用的 API 价格表。",
    "Plan GPUs and clouds for self-hosting a model: memory fit, speed, cost, export rules.\n\n"
    "Without --gpu it ranks every catalog GPU at its smallest card count (1-64) that fits and\n"
    "meets the targets; with --gpu (and --count) it evaluates that setup. `plan usage` answers\n"
    '"should we self-host?" from the gateway\'s own request log. Subcommands list the catalog.': (
        "为自建部署规划 GPU 与云：显存是否装得下、速度、成本、出口管制。\n\n"
        "不带 --gpu 时，按能装下模型并满足目标的最少卡数（1-64）对目录中每种 GPU 排名；\n"
        "带 --gpu（及 --count）时评估该配置。`plan usage` 根据网关自己的请求日志回答\n"
        "「该不该自建？」。子命令列出目录。"
    ),
    "Cards for one model copy (1-64).": "一份模型副本所用的卡数（1-64）。",
    "Serving engine whose measured efficiency to use.": "使用哪个推理引擎的实测效率。",
    "Tensor-parallel size (with --count).": "张量并行规模（与 --count 一起用）。",
    "Pipeline-parallel size (with --count).": "流水线并行规模（与 --count 一起用）。",
    "MoE attention data-parallel groups (EP = TP x DP).": "MoE 注意力数据并行组数（EP = TP x DP）。",
    "Network between nodes, Gb/s per GPU (400 = InfiniBand NDR).": "节点间网络，每 GPU 的 Gb/s（400 = InfiniBand NDR）。",
    "Largest acceptable TTFT at load.": "负载下可接受的最大首 token 延迟。",
    "Slowest acceptable tokens/s per stream.": "每路流可接受的最低 token/秒。",
    "Request rate to size for (queueing at load).": "按此请求速率规划（考虑负载下的排队）。",
    "Should we self-host? Size and price from the gateway's own request log.": (
        "该不该自建？根据网关自己的请求日志估算规模和价格。"
    ),
    "With --from-usage: first UTC day.": "与 --from-usage 一起用：起始 UTC 日。",
    "With --from-usage: the open model to price for an API model (repeatable).": (
        "与 --from-usage 一起用：为某个 API 模型估价时对应的开源模型（可重复）。"
    ),
    # keys
    "Manage API keys kept in the store (stored as hashes; changes reach gateways in ~1 s).": (
        "管理保存在数据库中的 API 密钥（只保存哈希；修改约 1 秒内到达各网关）。"
    ),
    "Create a key and print its secret, once.": "创建密钥并打印其明文（仅此一次）。",
    "Gateway configuration file (YAML); its `database:` setting is used.": "网关配置文件（YAML），使用其中的 `database:` 设置。",
    "Database URL, overriding the config file (sqlite:///file.db, postgresql://user@host/db).": (
        "数据库 URL，覆盖配置文件中的设置（sqlite:///file.db、postgresql://user@host/db）。"
    ),
    "A name people recognise.": "便于识别的名称。",
    "Who the key belongs to (team, person, service).": "密钥的归属（团队、个人、服务）。",
    "Allowed models: names or globs (gpt-4o*). '' = all.": "允许的模型：名称或通配符（gpt-4o*）。'' 表示全部。",
    "Allowed endpoints: chat, completions, embeddings, images, audio, moderations, models, files, "
    "rerank, messages, or /v1/... prefixes. '' = all.": (
        "允许的接口：chat、completions、embeddings、images、audio、moderations、models、files、"
        "rerank、messages，或 /v1/... 前缀。'' 表示全部。"
    ),
    "Client networks allowed. '' = anywhere.": "允许的客户端网段。'' 表示不限。",
    "Requests per minute (0 or 'none': no limit).": "每分钟请求数（0 或 'none' 表示不限）。",
    "Requests per UTC day.": "每个 UTC 日的请求数。",
    "Tokens per minute.": "每分钟 token 数。",
    "Requests in flight at once.": "同时进行的请求数。",
    "Token budget for --budget-period.": "--budget-period 周期内的 token 预算。",
    "Spending budget in USD for --budget-period.": "--budget-period 周期内的美元预算。",
    "Period of --budget-tokens/--budget-usd (UTC day, UTC month, or ever). Default: total.": (
        "--budget-tokens/--budget-usd 的周期（UTC 日、UTC 月或累计）。默认：累计。"
    ),
    "30d, 12h, 90m, 2026-12-31 (00:00 UTC), or never.": "30d、12h、90m、2026-12-31（UTC 00:00）或 never。",
    "Keep request and response bodies in the log (redacted).": "在日志中保存请求和响应内容（已脱敏）。",
    "Response cache for this key: on, off, or default (the config decides).": "此密钥的响应缓存：on（开）、off（关）或 default（由配置决定）。",
    "List keys (never their secrets).": "列出密钥（从不显示明文）。",
    "Include revoked keys.": "包括已吊销的密钥。",
    "Show one key, by its id or a unique prefix of the id or of the secret.": "显示一个密钥：用 id，或 id、密钥明文的唯一前缀。",
    "Change a key's fields; a limit set to 0 or 'none' is removed, a list set to '' allows all.": (
        "修改密钥字段；限额设为 0 或 'none' 即取消，列表设为 '' 即不限。"
    ),
    "Turn the key on or off.": "启用或停用密钥。",
    "Revoke a key for good; gateways refuse it within two seconds.": "永久吊销密钥；各网关两秒内拒绝它。",
    # usage, logs, db
    "Requests, tokens and cost per key, model or day (UTC days, both ends inclusive).": (
        "按密钥、模型或日期统计请求数、token 和费用（UTC 日，含首尾两天）。"
    ),
    "First UTC day to include (YYYY-MM-DD, today, 7d).": "起始 UTC 日（YYYY-MM-DD、today、7d）。",
    "Last UTC day to include.": "结束 UTC 日。",
    "Only this key.": "只看这个密钥。",
    "Only this model (the name clients requested).": "只看这个模型（客户端请求的名称）。",
    "Group by key, model or day (default: key and model).": "按密钥、模型或日期分组（默认：密钥和模型）。",
    "Print a JSON list of rows.": "以 JSON 列表打印各行。",
    "The most recent requests from the request log.": "请求日志中最近的请求。",
    "How many recent requests.": "显示多少条最近的请求。",
    "Keep printing new requests as they are logged (Ctrl-C stops).": "持续打印新记录的请求（Ctrl-C 停止）。",
    "Print one JSON object per line.": "每行打印一个 JSON 对象。",
    "Database schema migrations.": "数据库结构迁移。",
    "Bring the database to the newest schema (safe to repeat).": "把数据库升级到最新结构（可重复执行）。",
    "Print the revision the database is at, and whether that is the newest.": "打印数据库当前的版本，以及是否为最新。",
    # channels
    "Channels: the upstreams behind each public model and their health.": "渠道：每个对外模型背后的上游及其健康状态。",
    "Each channel's breaker state, failures, cooldown, last error, load and latency.\n\n"
    "Reads the running gateway's /readyz; exits 1 if the gateway cannot be reached.": (
        "每个渠道的熔断状态、失败次数、冷却时间、最近错误、负载和延迟。\n\n"
        "读取运行中网关的 /readyz；无法连接网关时退出码为 1。"
    ),
    "Gateway configuration file; its server.host and server.port locate the gateway.": (
        "网关配置文件；用其中的 server.host 和 server.port 找到网关。"
    ),
    "The gateway's base URL (http://host:port), overriding the config.": "网关的基础 URL（http://host:port），覆盖配置。",
    "Print the channel list as JSON.": "以 JSON 打印渠道列表。",
    "Send one probe through a channel now: latency and the answer or error (exit 1 if it failed).": (
        "立即通过渠道发送一次探测：显示延迟和回答或错误（失败时退出码为 1）。"
    ),
    "Gateway configuration file: finds the gateway and its admin key.": "网关配置文件：用于找到网关及其管理密钥。",
    "The gateway's base URL, overriding the config.": "网关的基础 URL，覆盖配置。",
    "The gateway's admin key (default: admin_key from the config).": "网关的管理密钥（默认：配置中的 admin_key）。",
    "Put a channel back in service now: its breaker closed, its refused provider keys restored.": (
        "让渠道立即恢复服务：熔断器复位，被拒绝的服务商密钥恢复。"
    ),
    "Route to a channel again (stored; every gateway follows).": "重新向该渠道路由（保存到数据库，所有网关跟随）。",
    "Stop routing to a channel, whoever defined it (stored; every gateway follows).": (
        "停止向该渠道路由，无论它在哪里定义（保存到数据库，所有网关跟随）。"
    ),
    # upstreams, models
    "Provider accounts and servers the gateway forwards to (changes reach gateways in ~1 s).": (
        "网关转发到的服务商账号和服务器（修改约 1 秒内到达各网关）。"
    ),
    "List upstreams from the file and the store (keys masked).": "列出配置文件和数据库中的上游（密钥已遮盖）。",
    "Show one upstream (keys masked).": "显示一个上游（密钥已遮盖）。",
    "Add an upstream to the store; its key is stored encrypted (needs SLUICEGATE_MASTER_KEY).": (
        "向数据库添加上游；其密钥加密保存（需要 SLUICEGATE_MASTER_KEY）。"
    ),
    "A provider preset (openai, deepseek, groq, ...): base URL and auth.": "服务商预设（openai、deepseek、groq……）：接口地址和认证方式。",
    "The provider's API base URL (http:// or https://).": "服务商的 API 基础地址（http:// 或 https://）。",
    "The provider key ('-' reads it from standard input).": "服务商密钥（'-' 表示从标准输入读取）。",
    "Several provider keys used in turn.": "轮流使用的多个服务商密钥。",
    "Extra header sent upstream.": "发往上游的额外请求头。",
    "Azure OpenAI api-version.": "Azure OpenAI 的 api-version。",
    "Requests per minute this account may take.": "该账号每分钟可承受的请求数。",
    "Tokens per minute this account may take.": "该账号每分钟可承受的 token 数。",
    "Route to it or not.": "是否向它路由。",
    "Change a stored upstream's fields (the others are kept, the key included).": "修改数据库中上游的字段（其余字段保留，包括密钥）。",
    "Remove a stored upstream (refused while a model route uses it).": "删除数据库中的上游（仍被模型路由使用时拒绝）。",
    "Public model names and the channels that serve them (changes reach gateways in ~1 s).": (
        "对外模型名称及提供服务的渠道（修改约 1 秒内到达各网关）。"
    ),
    "List model routes from the file and the store.": "列出配置文件和数据库中的模型路由。",
    "Show one model route.": "显示一个模型路由。",
    "Add a public model name served by one or more channels.": "添加一个由一个或多个渠道提供服务的对外模型名称。",
    "UPSTREAM[/MODEL][,weight=N][,priority=N][,rpm=N][,tpm=N]; repeat for several channels.": (
        "上游[/模型][,weight=N][,priority=N][,rpm=N][,tpm=N]；多个渠道请重复此选项。"
    ),
    "Store it switched off.": "保存为停用状态。",
    "Replace a stored route's channels, or switch it on or off.": "替换数据库中路由的渠道，或启用、停用它。",
    "UPSTREAM[/MODEL][,weight=N][,priority=N][,rpm=N][,tpm=N]; repeat for several channels. "
    "Replaces them all.": (
        "上游[/模型][,weight=N][,priority=N][,rpm=N][,tpm=N]；多个渠道请重复此选项。替换全部渠道。"
    ),
    "Serve it or not.": "是否提供服务。",
    "Remove a stored model route; requests for it are refused within a second.": "删除数据库中的模型路由；一秒内对它的请求即被拒绝。",
    # prices, audit
    "Price overrides per model (per million tokens), beside the packaged price table.": (
        "按模型覆盖价格（每百万 token），作为内置价格表的补充。"
    ),
    "List price overrides from the file and the store.": "列出配置文件和数据库中的价格覆盖。",
    "Create or replace the price of a model.": "创建或替换一个模型的价格。",
    "Per million prompt tokens.": "每百万提示 token 的价格。",
    "Per million completion tokens.": "每百万输出 token 的价格。",
    "Per million cached prompt tokens.": "每百万缓存提示 token 的价格。",
    "Remove a stored price override (the packaged price applies again).": "删除数据库中的价格覆盖（重新使用内置价格）。",
    "Who changed the catalog, what, when, before and after (secrets masked), newest first.": (
        "谁在何时修改了什么，以及修改前后的内容（机密已遮盖），最新的在前。"
    ),
    "7d, 12h, 30m ago, or a date / ISO date-time (UTC).": "7d、12h、30m 之前，或日期 / ISO 日期时间（UTC）。",
    "Same forms as --since.": "格式同 --since。",
    "Only changes to this upstream, model, channel, price or key (id).": "只看对这个上游、模型、渠道、价格或密钥（id）的修改。",
    "Only this kind.": "只看这一类。",
    "Print JSON (a list).": "打印 JSON（列表）。",
    "Print one JSON object a line (for export).": "每行打印一个 JSON 对象（用于导出）。",
    "Print CSV (for export).": "打印 CSV（用于导出）。",
    # defaults shown in --help
    "$SLUICEGATE_CONFIG, else ./sluicegate.yaml if present": "$SLUICEGATE_CONFIG，否则当前目录的 ./sluicegate.yaml（如有）",
    "$SLUICEGATE_CONFIG, else ./sluicegate.yaml if present, else none (the built-in mock)": (
        "$SLUICEGATE_CONFIG，否则 ./sluicegate.yaml（如有），否则不用配置文件（内置 mock）"
    ),
    # click's own words
    "Show this message and exit.": "显示此帮助并退出。",
    "Show the version and exit.": "显示版本并退出。",
    # tenancy: users, teams, groups, balance, codes; keys --user/--team
    "Requests per minute over all their keys (0: no limit).": "其全部密钥合计每分钟请求数（0：不限）。",
    "Requests per UTC day over all their keys (0: no limit).": "其全部密钥合计每个 UTC 日请求数（0：不限）。",
    "Tokens per minute over all their keys (0: no limit).": "其全部密钥合计每分钟 token 数（0：不限）。",
    "Requests in flight at once over all their keys (0: no limit).": "其全部密钥合计同时在途请求数（0：不限）。",
    "Change a team (by id or name): name, group, limits over all its keys.": "修改团队（按 id 或名称）：名称、分组、全部密钥合计的限额。",
    "The user the key belongs to; charged to their balance.": "密钥所属的用户；费用从其余额扣除。",
    "The team the key belongs to; charged to its balance.": "密钥所属的团队；费用从团队余额扣除。",
    "Manage users: people who hold a balance and keys (see docs/tenancy.md).": "管理用户：持有余额和密钥的人（见 docs/tenancy.md）。",
    "Create a user and print its id.": "创建用户并打印其 id。",
    "The user's name (unique; they sign in with it).": "用户名（唯一，用于登录）。",
    "Team id or name to put the user in.": "用户所属团队的 id 或名称。",
    "Price group of the user.": "用户的价格分组。",
    "What the user may do.": "用户的角色（可做什么）。",
    "Read the user's password from standard input.": "从标准输入读取用户密码。",
    "Link the user to this single sign-on subject (the ID token's `sub`) at portal.oidc.issuer.": (
        "将用户关联到 portal.oidc.issuer 上的这个单点登录主体（ID 令牌的 `sub`）。"
    ),
    "The issuer for --sso-subject (default: portal.oidc.issuer).": (
        "--sso-subject 所属的签发方（默认：portal.oidc.issuer）。"
    ),
    "Remove the user's single sign-on link.": "解除用户的单点登录关联。",
    "List users (never their passwords).": "列出用户（从不显示密码）。",
    "Show one user (by id or name) with their balance.": "显示一个用户（按 id 或名称）及其余额。",
    "Change a user (by id or name).": "修改用户（按 id 或名称）。",
    "A new name.": "新名称。",
    "Stop (or allow again) the user's keys.": "停用（或重新启用）该用户的密钥。",
    "Manage teams: members, and a balance team keys are charged to.": "管理团队：成员，以及团队密钥扣费所用的余额。",
    "Create a team and print its id.": "创建团队并打印其 id。",
    "The team's name (unique).": "团队名称（唯一）。",
    "Price group of the team's keys.": "团队密钥的价格分组。",
    "List teams with their members.": "列出团队及其成员。",
    "Add a user to a team (ids or names).": "把用户加入团队（id 或名称）。",
    "The member's role in the team.": "成员在团队中的角色。",
    "Manage price groups: a ratio on model prices, and which models a group sees.": "管理价格分组：模型价格的倍率，以及分组可见的模型。",
    "Create or change a group.": "创建或修改分组。",
    "Multiplier on model prices for this group (e.g. 0.8).": "该分组的模型价格倍率（如 0.8）。",
    "What the group is for.": "分组的用途说明。",
    "Comma-separated models the group may see (default: every model).": "分组可见的模型，逗号分隔（默认：全部模型）。",
    "Let the group see every model again.": "让分组重新可见全部模型。",
    "List groups with their ratios and models.": "列出分组及其倍率和模型。",
    "Balances of users and teams: top up, and show with the ledger.": "用户和团队的余额：充值，及查看余额与账目。",
    "Credit AMOUNT (in the configured currency) to a user's or team's balance.": "向用户或团队的余额充值 AMOUNT（按配置的币种）。",
    "Why (kept in the ledger).": "原因（记入账目）。",
    "Show a user's or team's balance and ledger.": "显示用户或团队的余额与账目。",
    "Ledger entries to show, newest first.": "显示的账目条数，最新的在前。",
    "Redemption codes: create a batch, list them, redeem one for a user.": "兑换码：批量创建、列出、为用户兑换。",
    "Create a batch of codes and print them (this is the only time they are shown).": "批量创建兑换码并打印（只显示这一次）。",
    "What each code credits, in the configured currency.": "每个兑换码的面额（按配置的币种）。",
    "How many codes.": "兑换码数量。",
    "When the codes expire: 30d, 12h, a date, or an ISO date-time.": "兑换码过期时间：30d、12h、日期或 ISO 日期时间。",
    "List codes (their first characters only) and who redeemed them.": "列出兑换码（只显示开头几位）及兑换人。",
    "Only this batch.": "只看这个批次。",
    "Redeem a code for a user (each code works once).": "为用户兑换一个兑换码（每个码只能用一次）。",
    "The user (id or name) the code is credited to.": "兑换到的用户（id 或名称）。",
}

# Section headings and fixed words click writes itself.
WORDS_ZH: dict[str, str] = {
    "Usage": "用法",
    "Options": "选项",
    "Commands": "命令",
    "Arguments": "参数",
    "default": "默认",
    "required": "必填",
}
