#!/usr/bin/env python3
"""Module cycles in our crates (issue "A house a newcomer can live in": no module cycle anywhere).

For every module M of every crate under shared/, functions/, tools/ and tests/, the `use`s among
M's children (a child's whole subtree counts as the child: `crate::a::b::x` used from
`crate::a::c` is an arrow c -> b), read from the source text (`crate::` and `super::` paths,
comments and `#[cfg(test)] mod tests` blocks left out). Prints each cycle and exits 1 if there is
one. A text scan, not the compiler's view: a glob import (`use super::*`) is not followed.
Usage: python3 scripts/module-cycles.py [ROOT]"""
import os, re, sys, itertools
root = sys.argv[1] if len(sys.argv) > 1 else '.'
crates = []
for d in ['shared','functions','tools','tests']:
    p=os.path.join(root,d)
    if not os.path.isdir(p): continue
    for c in sorted(os.listdir(p)):
        src=os.path.join(p,c,'src')
        if os.path.isdir(src): crates.append(src)
def modpath(src, f):
    rel=os.path.relpath(f,src)[:-3].split(os.sep)
    if rel[-1] in ('lib','main','mod'): rel=rel[:-1]
    if rel and rel[0]=='bin': return None
    return rel
found=0
for src in crates:
    files=[]
    for dp,_,fs in os.walk(src):
        for f in fs:
            if f.endswith('.rs'): files.append(os.path.join(dp,f))
    edges=set()
    for f in files:
        m=modpath(src,f)
        if m is None: continue
        text=open(f).read()
        # drop test modules crudely: everything after '#[cfg(test)]\nmod tests'
        text=re.sub(r'//[^\n]*', '', text)
        text=re.split(r'#\[cfg\(test\)\]\s*mod tests\s*\{', text)[0]
        if '/tests' in f or f.endswith('tests.rs'): continue
        for u in re.findall(r'\bcrate::((?:\w+::)*\w+)', text):
            parts=u.split('::')
            # also resolve super:: crudely: skip
            t=parts
            # common prefix
            k=0
            while k<min(len(m),len(t)) and m[k]==t[k]: k+=1
            if k<len(m) and k<len(t):
                edges.add((tuple(m[:k]), m[k], t[k]))
        for u in re.findall(r'\bsuper::(\w+)', text):
            if len(m)>=2:
                parent=m[:-2] if not f.endswith(('mod.rs',)) else m[:-2]
                # super from file m refers to parent m[:-1]; sibling u under m[:-1]
                par=m[:-1]
                if len(par)>=1 and u!=m[-1] and not u[0].isupper():
                    edges.add((tuple(par), m[-1], u))
    byparent={}
    for p,a,b in edges:
        if a!=b: byparent.setdefault(p,set()).add((a,b))
    for p,es in byparent.items():
        g={}
        for a,b in es: g.setdefault(a,set()).add(b)
        # tarjan
        idx={};low={};st=[];on=set();res=[];c=[0]
        def sc(v):
            idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
            for w in g.get(v,()):
                if w not in idx: sc(w);low[v]=min(low[v],low[w])
                elif w in on: low[v]=min(low[v],idx[w])
            if low[v]==idx[v]:
                comp=[]
                while True:
                    w=st.pop();on.discard(w);comp.append(w)
                    if w==v: break
                if len(comp)>1: res.append(comp)
        for v in list(g):
            if v not in idx: sc(v)
        for comp in res:
            found+=1
            print(f"{src}: in {'::'.join(p) or 'crate'}: cycle among {sorted(comp)}")
            for a in sorted(comp):
                print('   ',a,'->',sorted(x for x in g.get(a,()) if x in comp))
print('module cycles:',found)
sys.exit(1 if found else 0)
