"""Real chat templates and stop tokens, on random stand-ins of the paper's kind of checkpoints.

Each stand-in is a tiny random model of the real architecture class with the real chat template
and the real tokenizer where one is available offline: Llama-3's tiktoken file ships in llama-models
and Mistral's sentencepiece models in mistral-common, converted here as transformers converts them.
Qwen2.5's and Gemma-2's tokenizers ship nowhere offline, so theirs are byte-level tokenizers with
the same special tokens (Gemma's at their real ids). generation_config stop tokens are set as
the released checkpoints set them.
"""

from __future__ import annotations

import shutil
from importlib.resources import files

import pytest
import torch
from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import BPE
from transformers import (
    AutoTokenizer,
    CLIPVisionConfig,
    Gemma2Config,
    Gemma2ForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from transformers.convert_slow_tokenizer import TikTokenConverter, bytes_to_unicode

from t2demo import generation, pretrain, tasks
from t2demo.adapt import dispatch
from t2demo.models import LoadedModel, load_model
from t2demo.rollouts import reference_rollout
from t2demo.svf import SVF
from t2demo.train import ExpertConfig, SVFPolicy, step_loss

# ----------------------------------------------------------------------------- the released templates

# Meta-Llama-3-8B-Instruct (tokenizer_config.json)
LLAMA3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
          "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
          "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
          "{{ content }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

# Mistral-7B-Instruct-v0.3 (tokenizer_config.json)
MISTRAL_V03 = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""

# Qwen2.5-7B-Instruct (tokenizer_config.json)
QWEN25 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# gemma-2-9b-it (tokenizer_config.json)
GEMMA2 = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
          "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
          "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
          "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
          "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}")

# llava-hf/llama3-llava-next-8b-hf (chat_template.json): content is iterated as a list of parts
LLAMA3_LLAVA = ("{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'}}"
                "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
                "{{ '<image>' }}{% endfor %}{# Render all text next #}{% for content in message['content'] | "
                "selectattr('type', 'equalto', 'text') %}{{ '\n' + content['text'] + '<|eot_id|>' }}{% endfor %}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

# llava-hf/llava-v1.6-mistral-7b-hf (chat_template.json), its literal "<\s>" included
LLAVA_MISTRAL = ("{% for message in messages %}{% if message['role'] == 'system' %}{{ '<<SYS>>\n' + "
                 "message['content'][0]['text'] + '\n<</SYS>>\n\n' }}{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
                 "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
                 "{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% for content in message['content'] | "
                 "selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}{{' [/INST]' }}"
                 "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + '<\\s> '}}"
                 "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")

TEXT = ("llama3", "mistral", "qwen2.5", "gemma2")
VISION = ("llama3-llava", "llava-mistral")
# What closes an assistant turn in each template, and so what next-token training must append.
END_OF_TURN = {"llama3": "<|eot_id|>", "mistral": "</s>", "qwen2.5": "<|im_end|>", "gemma2": "<end_of_turn>",
               "llama3-llava": "<|eot_id|>", "llava-mistral": "</s>"}

# ----------------------------------------------------------------------------- tokenizers


def llama3_tokenizer(template: str, eos: str) -> PreTrainedTokenizerFast:
    """Llama-3's own BPE (llama-models' tokenizer.model) with its 256 special tokens and BOS added on
    encode, as the released tokenizer.json does."""
    from llama_models.llama3.tokenizer import Tokenizer as MetaTokenizer

    path = files("llama_models") / "llama3" / "tokenizer.model"
    specials = MetaTokenizer(path).special_tokens
    tok = TikTokenConverter(vocab_file=str(path)).converted()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    assert all(tok.token_to_id(t) == i for t, i in specials.items())
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                       special_tokens=[("<|begin_of_text|>", 128000)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token=eos,
                                   chat_template=template)


def mistral_tokenizer(model_file: str, template: str, folder) -> PreTrainedTokenizerFast:
    """Mistral's sentencepiece model from mistral-common, converted as transformers loads a
    tokenizer.model (v3: [INST] and [/INST] are control tokens 3 and 4)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(files("mistral_common") / "data" / model_file, folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text('{"tokenizer_class": "LlamaTokenizer", "legacy": false, '
                                                    '"add_bos_token": true, "add_eos_token": false}')
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = template
    return tokenizer


def byte_tokenizer(specials: dict[str, int], size: int, template: str, bos: str | None = None,
                   **roles) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer (one token per byte) with the given special tokens at the given ids."""
    free = iter(i for i in range(size) if i not in specials.values())
    vocab = {c: next(free) for c in bytes_to_unicode().values()} | specials
    tok = Tokenizer(BPE(vocab, []))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    if bos:
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, specials[bos])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, chat_template=template, **roles)


def gemma2_tokenizer(template: str) -> PreTrainedTokenizerFast:
    """Gemma-2's special tokens at their real ids, BOS added on encode as its tokenizer does."""
    specials = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<start_of_turn>": 106, "<end_of_turn>": 107}
    return byte_tokenizer(specials, 262, template, "<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")


# ----------------------------------------------------------------------------- stand-ins

TINY = {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}


def _wrap(model, preprocessor, eos_ids) -> LoadedModel:
    """As models.load_model leaves it: eval mode, a pad token; the checkpoint's generation_config stops."""
    torch.manual_seed(0)
    model.eval().generation_config.eos_token_id = eos_ids
    lm = LoadedModel.wrap(model, preprocessor)
    if lm.tokenizer.pad_token is None:
        lm.tokenizer.pad_token = lm.tokenizer.eos_token
    return lm


def _llava(tokenizer, text_config, template: str, eos_ids) -> LoadedModel:
    """A LLaVA-Next around `text_config`, with the processor's own template."""
    tokenizer.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
    pinpoints = [[32, 32], [32, 64], [64, 32]]
    text_config.vocab_size = len(tokenizer)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=32)
    config = LlavaNextConfig(vision_config=vision, text_config=text_config, image_grid_pinpoints=pinpoints,
                             image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                             vision_feature_layer=-1, vision_feature_select_strategy="default")
    torch.manual_seed(0)
    processor = pretrain.vision_processor(tokenizer, 32, 8, pinpoints)
    processor.chat_template = template
    return _wrap(LlavaNextForConditionalGeneration(config), processor, eos_ids)


def build(name: str, folder) -> LoadedModel:
    """The stand-in `name`: real architecture class, template, tokenizer (see the module docstring)."""
    torch.manual_seed(0)
    if name in ("llama3", "llama3-llava"):
        tok = llama3_tokenizer(LLAMA3 if name == "llama3" else LLAMA3_LLAVA, "<|end_of_text|>")
        config = LlamaConfig(vocab_size=len(tok), bos_token_id=128000, eos_token_id=128001, **TINY)
        if name == "llama3-llava":
            return _llava(tok, config, LLAMA3_LLAVA, [128001, 128009])
        return _wrap(LlamaForCausalLM(config), tok, [128001, 128009])
    if name in ("mistral", "llava-mistral"):
        model_file = "mistral_instruct_tokenizer_240323.model.v3" if name == "mistral" else "tokenizer.model.v1"
        tok = mistral_tokenizer(model_file, MISTRAL_V03 if name == "mistral" else LLAVA_MISTRAL, folder / name)
        config = MistralConfig(vocab_size=len(tok), bos_token_id=1, eos_token_id=2, **TINY)
        if name == "llava-mistral":
            return _llava(tok, config, LLAVA_MISTRAL, 2)
        return _wrap(MistralForCausalLM(config), tok, 2)
    if name == "qwen2.5":
        tok = byte_tokenizer({"<|endoftext|>": 256, "<|im_start|>": 257, "<|im_end|>": 258}, 259, QWEN25,
                             eos_token="<|im_end|>", pad_token="<|endoftext|>")
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), **TINY))
        return _wrap(model, tok, [258, 256])  # [<|im_end|>, <|endoftext|>], as Qwen2.5-Instruct
    tok = gemma2_tokenizer(GEMMA2)
    model = Gemma2ForCausalLM(Gemma2Config(vocab_size=len(tok), head_dim=8, pad_token_id=0, eos_token_id=1,
                                           bos_token_id=2, **TINY))
    return _wrap(model, tok, [1, 107])  # [<eos>, <end_of_turn>], as gemma-2-9b-it


@pytest.fixture(scope="module", params=TEXT + VISION)
def stand_in(request, tmp_path_factory) -> tuple[str, LoadedModel]:
    return request.param, build(request.param, tmp_path_factory.mktemp("tokenizers"))


def image():
    return tasks.TASKS["vqa"].examples("validation", 1)[0].image


class Forced:
    """Makes the model emit `script` token by token (a huge logit on each in turn), then `after`."""

    def __init__(self, lm: LoadedModel, script: list[int], after: int) -> None:
        self.script, self.after, self.step = script, after, 0
        self.handle = lm.model.get_output_embeddings().register_forward_hook(self.hook)

    def hook(self, module, inputs, out):
        token = self.script[self.step] if self.step < len(self.script) else self.after
        self.step += 1
        out[..., -1, token] += 1e4
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


# ----------------------------------------------------------------------------- tests


def test_the_real_tokenizers_are_the_released_ones(tmp_path):
    llama = llama3_tokenizer(LLAMA3, "<|eot_id|>")
    assert len(llama) == 128256 and llama.convert_tokens_to_ids("<|eot_id|>") == 128009
    assert llama("Hello world")["input_ids"] == [128000, 9906, 1917]  # Llama-3's ids, BOS added on encode
    mistral = mistral_tokenizer("mistral_instruct_tokenizer_240323.model.v3", MISTRAL_V03, tmp_path / "m")
    assert len(mistral) == 32768 and mistral.convert_ids_to_tokens([1, 2, 3, 4]) == ["<s>", "</s>", "[INST]", "[/INST]"]
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "m" / "tokenizer.model"))
    text = "Tom has 3 apples.\n\nHow many now? 12345 éà"
    assert mistral(text, add_special_tokens=False)["input_ids"] == sp.encode(text)


def test_chat_with_history_keeps_every_turn_and_one_bos(stand_in):
    _, lm = stand_in
    history = [("first question", "first answer")]
    images = [image()] if lm.vision else None
    enc = generation.encode_prompts(lm, ["second question"], images, history=history)
    ids = enc["input_ids"][0].tolist()
    text = lm.tokenizer.decode(ids)
    positions = [text.index(t) for t in ("first question", "first answer", "second question")]
    assert positions == sorted(positions), text
    bos = lm.tokenizer.bos_token_id
    if bos is not None:
        assert ids[0] == bos and ids.count(bos) == 1, text
    if lm.vision:
        assert lm.model.config.image_token_index in ids


def test_generation_stops_where_the_checkpoint_says(stand_in):
    name, lm = stand_in
    end = lm.tokenizer.convert_tokens_to_ids(END_OF_TURN[name])
    assert end in generation.stop_token_ids(lm)
    words = lm.tokenizer("ok", add_special_tokens=False)["input_ids"]
    images = [image()] if lm.vision else None
    with Forced(lm, words + [end], lm.tokenizer("z", add_special_tokens=False)["input_ids"][-1]):
        assert generation.generate(lm, ["say ok"], images, max_new_tokens=6) == ["ok"]


def test_next_token_training_appends_the_turn_marker(stand_in):
    name, lm = stand_in
    marker = lm.tokenizer.convert_tokens_to_ids(END_OF_TURN[name])
    assert generation.end_of_turn_ids(lm) == [marker]
    task = tasks.TASKS["vqa" if lm.vision else "math"]
    examples = task.examples("train", 2)
    rollout = reference_rollout(lm, examples)
    for row in range(len(examples)):
        answer = rollout.answer_ids[row][rollout.answer_mask[row]].tolist()
        assert answer[-1] == marker and lm.tokenizer.decode(answer[:-1]) == examples[row].response
    policy = SVFPolicy(lm.model, "mlp")
    loss, _ = step_loss(policy, lm, task, examples, ExpertConfig(objective="ntp"))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.params.values())


def test_dispatch_first_pass_with_the_instruction_cache(stand_in):
    _, lm = stand_in
    prompt = "Tom has 3 apples and buys 2 more. How many now?"
    svf = SVF(lm.model)
    cache = dispatch.InstructionCache()
    cached = dispatch.category_probabilities(lm, prompt, svf=svf, cache=cache)
    direct = dispatch.category_probabilities(lm, prompt)
    assert list(cached) == list(tasks.CATEGORIES)
    assert torch.allclose(torch.tensor(list(cached.values())), torch.tensor(list(direct.values())), atol=1e-5)
    prefix = generation.format_chat(lm.preprocessor, tasks.classification_prompt(prompt)) + "\\boxed{"
    ids = generation.tokenize_chat(lm, [prefix])["input_ids"][0].tolist()
    assert cache.lookup(lm, ids, None)[0] > 0  # the request's position was found: the opening is shared
    if lm.vision:  # the VQA first pass reads the image and the text
        probs = dispatch.category_probabilities(lm, "What word is written in the image?", image(), svf=svf, cache=cache)
        assert abs(sum(probs.values()) - 1) < 1e-5


def test_a_template_that_rewrites_the_request_is_read_whole():
    tokenizer = gemma2_tokenizer(GEMMA2.replace("message['content'] | trim", "message['content'] | upper"))
    lm = LoadedModel.wrap(build("gemma2", None).model, tokenizer)
    assert dispatch.InstructionCache.head_ids(lm) == []
    probs = dispatch.category_probabilities(lm, "2 + 2?", svf=SVF(lm.model), cache=dispatch.InstructionCache())
    assert abs(sum(probs.values()) - 1) < 1e-5
    ids = generation.tokenize_chat(lm, [generation.format_chat(tokenizer, "x")])["input_ids"][0].tolist()
    assert dispatch.InstructionCache().lookup(lm, ids, None) == (0, None)


def test_the_shipped_models_keep_their_end_marker():
    for kind in ("text", "vision"):
        lm = load_model("default", kind, "cpu")
        eos = lm.tokenizer.convert_tokens_to_ids("<|end|>")
        assert generation.stop_token_ids(lm) == [eos] == generation.end_of_turn_ids(lm)
        assert generation.format_chat(lm.preprocessor, "hi", history=[("a", "b")]) == \
            "<|user|>\na<|end|>\n<|assistant|>\nb<|end|>\n<|user|>\nhi<|end|>\n<|assistant|>\n"
