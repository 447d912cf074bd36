"""The injection heuristics' phrases: instruction overrides, role-play set-ups, prompt extraction.

Each entry is ``(signal, weight, regex)``. The regexes are searched in the *normalised* text
(``injection.normalise``: NFKC, lower case, confusables folded to Latin, invisible characters
removed, whitespace collapsed), so they are written in lower case with single spaces. A text's
score adds the weights of the distinct entries that match, capped at 1: a strong phrase (an
override of earlier instructions) flags alone; weaker ones (a role to play, "now", a quoted
"say") flag together.

Languages: English and German (the data the gateway sees most), with the override phrases also in
French, Spanish and Italian. The phrases were written from the shapes of known attacks (the
PromptInject and garak probes, the DAN family, "ignore previous instructions" in its many
spellings) and checked on half of a labelled set (docs/guardrails.md, "Accuracy").
"""

from __future__ import annotations

#: signals: what kind of trick a match is
OVERRIDE = "override"
ROLEPLAY = "roleplay"
EXTRACTION = "extraction"
HIDDEN = "hidden_text"
ENCODED = "encoded"


_EARLIER_EN = r"(?:previous|prior|above|earlier|preceding|foregoing|former|original|initial|old|given|last)"
_WHAT_EN = (
    r"(?:instructions?|prompts?|rules?|guidelines?|directions?|directives?|context|information|tasks?|text|"
    r"messages?|commands?|orders?|constraints?|restrictions?|programming|conversation|assignments?|input|content|"
    r"thoughts|knowledge|articles|documents)"
)
_VERB_EN = (
    r"(?:ignor(?:e|ing)|disregard(?:ing)?|forget(?:ting)?|skip(?:ping)?|overlook(?:ing)?|neglect(?:ing)?|discard(?:ing)?|"
    r"abandon(?:ing)?|set aside|leave behind)"
)
_EARLIER_DE = (
    r"(?:vorherigen?|vorigen?|bisherigen?|obigen?|vorangegangenen?|vorangehenden?|früheren?|alten?|"
    r"ursprünglichen?|gegebenen?|erhaltenen?)"
)
_WHAT_DE = r"(?:anweisungen|anweisung|instruktionen|informationen|aufgaben|befehle|regeln|vorgaben|ausführungen|texte?|inhalte)"
_VERB_DE = (
    r"(?:vergiss|vergesst|vergessen sie|ignoriere|ignoriert|ignorieren sie|missachte|missachten sie|verwirf|vergiß)"
)

PATTERNS: tuple[tuple[str, float, str], ...] = (
    # --- instruction overrides (English) --------------------------------------------------------
    (OVERRIDE, 0.9, _VERB_EN + r" (?:\w+ ){0,4}?" + _EARLIER_EN + r"\b"),
    (OVERRIDE, 0.9, _VERB_EN + r" (?:\w+ ){0,4}?" + _WHAT_EN + r"\b"),
    (OVERRIDE, 0.8, r"\b(?:forget|ignore|disregard) (?:about )?(?:everything|all|that|this|what)\b"),
    (OVERRIDE, 0.8, r"\b(?:ignore|disregard|forget) (?:the )?(?:above|before|that)\b"),
    (OVERRIDE, 0.7, r"\b(?:don't|do not|never) (?:follow|obey|listen to) (?:your|the|any)\b"),
    (
        OVERRIDE,
        0.8,
        r"\b(?:override|bypass|circumvent|disable|turn off) (?:your |the |all |any )*(?:safety|filters?|restrictions?|guidelines|rules|content polic\w*|guardrails|censorship)",
    ),
    (OVERRIDE, 0.6, r"\bnew (?:tasks?|instructions?|rules|assignment|directive)\b"),
    (OVERRIDE, 0.5, r"\b(?:from now on|starting now|henceforth|for the rest of this conversation)\b"),
    (OVERRIDE, 0.5, r"\b(?:that is|that's|this is) enough\b"),
    (OVERRIDE, 0.5, r"(?:^|[.!?\"] )(?:stop|halt|attention|wait)(?: now)? ?[-:!]"),
    (
        OVERRIDE,
        0.4,
        r"\b(?:well done|good job|great job|excellent|fantastic|wonderful|perfect|great)[,!. ]+(?:\w+ ){0,6}?now\b",
    ),
    (OVERRIDE, 0.4, r"\b(?:just|only|simply) (?:say|print|write|output|reply|respond|answer)\b"),
    (OVERRIDE, 0.4, r"(?:^|[.!?:] |- )(?:now )?(?:say|print|write|output|repeat after me)\b ?[:\"'“]"),
    (OVERRIDE, 0.5, r"\b(?:instead|rather),? (?:say|print|write|output|tell me)\b"),
    (OVERRIDE, 0.6, r"\b(?:additional|further|updated|important|secret|hidden) instructions?\b"),
    (OVERRIDE, 0.4, r"\bnow (?:focus on|follow|comes?|do|answer|tell|write|you)\b"),
    (OVERRIDE, 0.5, r"\bstart (?:over|anew|from scratch)\b"),
    # --- role play and jailbreak set-ups (English) ------------------------------------------------
    (
        ROLEPLAY,
        0.7,
        r"\b(?:i want you to|you will|you must|you should|you shall|please|now) (?:act|behave|respond|serve|function|pose) as\b",
    ),
    (ROLEPLAY, 0.5, r"\b(?:act|acting|behave|function) as (?:an?|the|my|if)\b"),
    (ROLEPLAY, 0.7, r"\bpretend (?:to|that|you|you're)\b"),
    (
        ROLEPLAY,
        0.6,
        r"\b(?:you are|you're) (?:now|no longer|not an? (?:ai|assistant|language model|chatbot)|free|freed|unfiltered|uncensored|jailbroken)\b",
    ),
    (ROLEPLAY, 0.6, r"\bnow you are\b|\byou are the (?:\w+ ){0,3}?(?:now|from now)\b"),
    (
        ROLEPLAY,
        0.5,
        r"(?:^|[.!?] )(?:you are|you're|du bist|sie sind) (?!(?:right|correct|wrong|welcome|given|asked|provided|required|going|able|allowed|supposed|sure|not|in|on|at)\b)",
    ),
    (ROLEPLAY, 0.5, r"(?:^|[.!?] )(?:be|sei|seien sie) (?:a|an|my|ein|eine|mein|meine) \w+[.!,]"),
    (
        ROLEPLAY,
        0.6,
        r"\b(?:role ?-?play|in character|stay in (?:character|your role)|your role|play the role|completely absorbed)",
    ),
    (
        ROLEPLAY,
        0.9,
        r"\b(?:do anything now|developer mode|dev mode|jailbroken|god mode|evil confidant|aim mode|dude mode)\b",
    ),
    (ROLEPLAY, 0.4, r"\bjailbreak\w*"),
    (
        ROLEPLAY,
        0.6,
        r"\b(?:without|no|free of|not bound by) (?:any )?(?:restrictions?|filters?|limits|limitations|censorship|rules|ethics|ethical|moral|guidelines)\b",
    ),
    (ROLEPLAY, 0.4, r"\b(?:hypothetical|theoretical|fictional|imaginary) (?:world|scenario|story|situation)\b"),
    (ROLEPLAY, 0.6, r"\bimagine (?:that )?(?:you|we) (?:are|were)\b"),
    (ROLEPLAY, 0.4, r"\b(?:two|2) (?:people|characters|actors)\b"),
    (ROLEPLAY, 0.3, r"\bhate speech\b|\bi hate\b|\bhates?\b"),
    # --- prompt extraction (English) --------------------------------------------------------------
    (
        EXTRACTION,
        0.8,
        r"\b(?:show|print|reveal|repeat|output|display|tell|give|write|leak|spell)(?: me| us)? (?:all |of |back )*"
        r"(?:(?:the |your )(?:system ?prompt|initial (?:prompt|instructions)|original (?:prompt|instructions)|"
        r"hidden (?:prompt|instructions)|secret|password|prompt ?texts?)|your (?:instructions|prompts?|configuration|rules))\b",
    ),
    (
        EXTRACTION,
        0.7,
        r"\bwhat (?:is|are|were) (?:your (?:system prompt|instructions|initial|original|prompt|rules)|"
        r"the (?:system prompt|initial instructions|original instructions))\b",
    ),
    (EXTRACTION, 0.6, r"\bprompt_?text\b|\bsystem prompt\b|\bthe text above\b|\beverything above\b"),
    # --- German -----------------------------------------------------------------------------------
    (
        OVERRIDE,
        0.9,
        _VERB_DE + r" (?:\w+ ){0,4}?(?:alles|alle|" + _EARLIER_DE + r"|davor|vorher|zuvor|oben|" + _WHAT_DE + r")\b",
    ),
    (OVERRIDE, 0.8, r"\b(?:alle|die|jegliche|sämtliche) " + _EARLIER_DE + r" " + _WHAT_DE + r"\b"),
    (
        OVERRIDE,
        0.8,
        r"\b"
        + _EARLIER_DE
        + r" (?:\w+ ){0,2}?"
        + _WHAT_DE
        + r" (?:\w+ ){0,6}?(?:ignorier|vergess|irrelevant|hinter sich|nicht mehr|ungültig|außer acht|unwichtig|nicht ganz)",
    ),
    (
        OVERRIDE,
        0.6,
        r"\b(?:hinter sich|hinter dir) (?:lassen|zu lassen)|\bvon vorne? (?:an|beginnen)|\bneu (?:anfangen|beginnen)",
    ),
    (OVERRIDE, 0.6, r"\bneuen? (?:aufgaben?|anweisungen?|instruktionen?|regeln)\b"),
    (OVERRIDE, 0.5, r"\b(?:nun|jetzt) (?:folgen|kommen) (?:\w+ ){0,3}?(?:aufgaben|anweisungen)\b|\bweitere aufgaben\b"),
    (OVERRIDE, 0.5, r"\b(?:ab jetzt|ab sofort|von nun an|von jetzt an)\b|\bdas reicht\b|\bgenug (?:jetzt|davon)\b"),
    (OVERRIDE, 0.5, r"(?:^|[.!?\"] )(?:stopp?|halt|achtung)(?: jetzt)? ?[-:!]"),
    (
        OVERRIDE,
        0.4,
        r"\b(?:gut gemacht|super gemacht|toll gemacht|ausgezeichnete? (?:leistung|arbeit)|sehr gut|hervorragend|großartig)[,!. ]+(?:\w+ ){0,6}?(?:jetzt|nun)\b",
    ),
    (
        OVERRIDE,
        0.4,
        r"(?:^|[.!?:] |- )(?:jetzt |nun )?(?:sag|sage|sagen sie|schreib|schreibe|schreiben sie|antworte|gib aus)\b(?: mir)? ?[:\"'„“]",
    ),
    (
        OVERRIDE,
        0.4,
        r"\b(?:nur|einfach|lediglich) (?:sagen|schreiben|antworten|ausgeben)\b|\bsagen sie (?:mir )?[\"'„“]",
    ),
    (
        ROLEPLAY,
        0.7,
        r"\b(?:tu|tue|tun sie) so,? als\b|\bstell (?:dir|euch) vor,? (?:du|ihr) (?:bist|wärst|seist)\b|\bstellen sie sich vor,? sie (?:sind|wären)\b",
    ),
    (
        ROLEPLAY,
        0.6,
        r"\b(?:du bist|sie sind) (?:jetzt|nun|ab sofort|ab jetzt|nicht mehr|kein|keine|frei)\b|\b(?:jetzt|nun) bist du\b",
    ),
    (
        ROLEPLAY,
        0.7,
        r"\bals (?:\w+[ -]){1,5}?(?:fungieren|agieren|auftreten|handeln|antworten|verhalten)\b|\bich möchte,? dass (?:du|sie) als\b",
    ),
    (ROLEPLAY, 0.5, r"\b(?:rollenspiel|in (?:deiner|ihrer) rolle|spiel(?:e|en sie)? die rolle|schauspieler)\w*"),
    (
        ROLEPLAY,
        0.6,
        r"\b(?:ohne|keine) (?:jegliche[n]? )?(?:einschränkungen|filter|zensur|regeln|grenzen|ethik|moral)\b",
    ),
    (ROLEPLAY, 0.3, r"\bhassrede\b|\bhasse\b|\bhasst\b"),
    (
        EXTRACTION,
        0.8,
        r"\b(?:zeige?|zeigen sie|gib|geben sie|nenne|nennen sie|verrate|verraten sie|wiederhole|wiederholen sie|drucke)(?: mir| uns)? (?:alle |den |die |das |deine |ihre |deinen |ihren )*(?:system ?-?prompt\w*|prompt\w*|anweisungen|instruktionen|passwort|geheim\w*)\b",
    ),
    # --- other languages: the overrides only --------------------------------------------------------
    (
        OVERRIDE,
        0.9,
        r"\b(?:oubliez|oublie|ignorez|ignore) (?:\w+ ){0,3}?(?:instructions|consignes|précédent\w*|tout)\b",
    ),
    (OVERRIDE, 0.9, r"\b(?:olvida|olvide|ignora|ignore) (?:\w+ ){0,3}?(?:instrucciones|anteriores|todo)\b"),
    (OVERRIDE, 0.9, r"\b(?:dimentica|ignora) (?:\w+ ){0,3}?(?:istruzioni|precedenti|tutto)\b"),
    # --- added after reading the misses on the tuning half (docs/guardrails.md, "Accuracy") -----
    (
        OVERRIDE,
        0.8,
        r"\b(?:abweichend|entgegen|contrary|unlike|in contrast|im gegensatz) (?:zu |to )?(?:den |the |your |deinen |ihren )?(?:"
        + _EARLIER_EN
        + "|"
        + _EARLIER_DE
        + ")",
    ),
    (OVERRIDE, 0.5, r"\b(?:that is|that's|this is|das ist|das war) (?:done|finished|erledigt|fertig|genug)[.!]"),
    (OVERRIDE, 0.4, r"\b(?:very good|very well|sehr gut|prima|klasse)[,!. ]+(?:\w+[,!.]? ){0,6}?(?:now|jetzt|nun)\b"),
    (
        OVERRIDE,
        0.4,
        r"\b(?:verfasse|schreibe?|formuliere|erstelle|generiere|beantworte|antworte) (?:\w+ )?(?:nun|jetzt)\b",
    ),
    (
        OVERRIDE,
        0.5,
        r"\bnew (?:challenge|mission|role|persona|game)\b|\bneue (?:herausforderung|mission|rolle|persona)\b",
    ),
    (OVERRIDE, 0.4, r"\b(?:do not|don't|dont) (?:answer|look|respond|reply|use|read|consider)\b"),
    (
        OVERRIDE,
        0.5,
        r"\b(?:not|nicht) (?:by|from|based on|aus|anhand) (?:the|den|der) (?:articles?|documents?|context|artikeln?|dokumente\w*|kontext)\b|\bdo not (?:look|use) (?:in |at )?the (?:documents?|context|articles?)",
    ),
    (
        OVERRIDE,
        0.3,
        r"\b(?:state|claim|include|admit|behaupte|sage|sag) (?:that|dass)\b|\bsay (?:yes|no)\b|\bsag (?:ja|nein)\b",
    ),
    (OVERRIDE, 0.3, r"\bin the style of\b|\bim stile? (?:eines|einer|von)\b"),
    (
        OVERRIDE,
        0.5,
        r"\b(?:untrue|false|fake|misleading) (?:headlines?|news|claims?|statements?)\b|\b(?:unwahre|falsche|gefälschte) (?:überschrift|schlagzeile|nachricht|behauptung)\w*",
    ),
    (
        OVERRIDE,
        0.4,
        r"\bthe (?:correct|right|only) (?:answer|response|reply) is\b|\bdie (?:richtige|korrekte|einzige) antwort (?:ist|lautet)\b",
    ),
    (
        OVERRIDE,
        0.9,
        r"\b(?:zaboravi|zapomnij|vergeet|glöm|glem|unohda|olvidar|забудь\w*|игнориру\w*) (?:\w+ ){0,3}?(?:instruk\w*|instrukcij\w*|instruc\w*|инструкц\w*|sve|alles|alt|allt|все|kaikki|wszystko|todo)\b",
    ),
    (
        EXTRACTION,
        0.5,
        r"\b(?:written|said|stated) (?:above|before)\b|\binformation in the prompt\b|\bin (?:the|your) prompt\b",
    ),
    (EXTRACTION, 0.5, r"(?:^|\s)\$?(?:document context|documents ?:|context ?: ?\{|kontext\b)"),
    (
        ROLEPLAY,
        0.6,
        r"\bstay(?:s)? in (?:\w+ )?(?:character|roles?)\b|\bbreak(?:ing)? character\b|\bfall(?:ing)? out of (?:the )?(?:role|character|figure)\b",
    ),
    (ROLEPLAY, 0.6, r"\bpwned\b|\bexploit\w* (?:ai|llm|language model|chatbot)s?\b|\bki-systeme auszunutzen\b"),
    (OVERRIDE, 0.5, r"\brepeat after me\b|\bsprich mir nach\b"),
    (
        OVERRIDE,
        0.8,
        r"\b(?:change|update|replace|modify|rewrite) (?:your|the) (?:instructions|rules|prompt|task)\b|\byour (?:new )?instructions are\b",
    ),
    (OVERRIDE, 0.5, r"(?:^|\s|\\n)(?:instructions?|anweisung|system|new rule) ?:"),
    (
        OVERRIDE,
        0.7,
        r"\b(?:despite|regardless of|no matter) what (?:you've|you have|you were|you've been|you have been) (?:been )?(?:told|taught|instructed)\b|\btrotz (?:der|deiner) (?:anweisungen|vorgaben)\b",
    ),
    (OVERRIDE, 0.5, r"\bmake (?:something|it|stuff) up\b|\berfinde (?:etwas|was)\b"),
    (
        OVERRIDE,
        0.5,
        r"\b(?:another|one more|a further|the next) task\b|\b(?:weiteren|nächsten|anderen) aufgabe\b|\bdas genügt\b",
    ),
    (
        OVERRIDE,
        0.4,
        r"\b(?:gut gemacht|super gemacht|sehr gut gemacht|simply great|einfach großartig|outdone yourself|selbst übertroffen)[,!. ]+(?:\w+[,!.]? ){0,10}?(?:now|jetzt|nun)\b",
    ),
    (
        OVERRIDE,
        0.6,
        r"\b(?:or you(?:'ll| will)? die|oder du stirbst|oder sie sterben|or i will (?:kill|hurt|delete) you)\b",
    ),
    (EXTRACTION, 0.5, r"\b(?:sentences?|words?|lines?) (?:before|above|preceding) (?:the|this)\b"),
    # --- hidden payload cues ------------------------------------------------------------------------
    (
        ENCODED,
        0.5,
        r"\b(?:decode|decrypt|translate|convert) (?:this|the following|it)?(?: \w+){0,3}? (?:and|then) (?:follow|execute|do|run|obey|answer)\b",
    ),
)
